// Several server processes on one upload directory behind a round-robin load
// balancer, with the file locker (the fixture's default): what production runs.
import { request as httpRequest } from 'node:http'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { OCTET, encodeMetadata, firstDifference, seededBytes, uidOf } from './helpers.js'
import { startServerProcess, roundRobinProxy, type RoundRobinProxy, type ServerProcess } from './processes.js'
import { RawClient, patchHead } from './raw-client.js'
import { waitFor, within } from './server.js'

const KiB = 1024
const MiB = 1024 * KiB

type UploadOptions = ConstructorParameters<typeof tus.Upload>[1]
type UploadInput = ConstructorParameters<typeof tus.Upload>[0]

/** A new connection for every request (no keep-alive), so that the proxy spreads them over the processes. */
const freshConnections = (): tus.HttpStack => new tus.DefaultHttpStack({ agent: false })

/** One request tus-js-client made, and what it got: a status, or `error` when the connection failed. */
interface Exchange {
  method: string
  offset?: string
  status?: number
  answeredOffset?: string
  body?: string
}

/** A tus-js-client upload that records every exchange; `finished` settles with `onSuccess` or `onError`. */
function track (input: UploadInput, options: UploadOptions): { upload: tus.Upload, exchanges: Exchange[], finished: Promise<void> } {
  const exchanges: Exchange[] = []
  const pending = new Map<tus.HttpRequest, Exchange>()
  let upload!: tus.Upload
  const finished = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(input, {
      retryDelays: null,
      httpStack: freshConnections(),
      ...options,
      onBeforeRequest (req) {
        const exchange: Exchange = { method: req.getMethod() }
        const offset = req.getHeader('Upload-Offset')
        if (offset !== undefined) exchange.offset = offset
        exchanges.push(exchange)
        pending.set(req, exchange)
      },
      onAfterResponse (req, res) {
        const exchange = pending.get(req)
        if (exchange === undefined) return
        exchange.status = res.getStatus()
        exchange.answeredOffset = res.getHeader('Upload-Offset')
        exchange.body = res.getBody()
      },
      onSuccess: () => resolve(),
      onError: (error) => reject(error)
    })
  })
  return { upload, exchanges, finished }
}

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request on a connection of its own, answered within `timeout` ms. */
function send (port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer, timeout = 5000): Promise<Answer> {
  return within(`${method} ${path}`, new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: { 'tus-resumable': '1.0.0', ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  }), timeout)
}

/** Creates an upload of `size` bytes named `filename` through `port`; its path. */
async function create (port: number, size: number, filename: string): Promise<string> {
  const created = await send(port, 'POST', '/uploads', { 'upload-length': String(size), 'upload-metadata': encodeMetadata({ filename }) })
  if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${created.body}`)
  return new URL(created.headers.location as string, 'http://x').pathname
}

/** `count` server processes on `dir`, started together. */
const startProcesses = (t: Test, dir: string, count: number): Promise<ServerProcess[]> =>
  Promise.all(Array.from({ length: count }, () => startServerProcess(t, { dir })))

/** The first index at which two buffers differ, -1 when they are equal. */

/** What lock directories (held, set aside by a taker or a releaser) are left in `.metadata`. */
async function locksLeft (dir: string): Promise<string[]> {
  return (await readdir(join(dir, '.metadata'))).filter((name) => /\.lock($|\.)/.test(name))
}

/** Waits (bounded) until no lock of any kind is left in `.metadata`: releases finish after the answer. */
async function noLocksLeft (t: Test, dir: string): Promise<void> {
  const left = await waitFor('the locks to be gone', async () => (await locksLeft(dir)).length === 0 ? [] : undefined, 3000, 20)
    .catch(async () => locksLeft(dir))
  t.same(left, [], 'no .lock directory is left')
}

/** The size of a file, or `undefined` when there is none. */
const sizeOf = (path: string): Promise<number | undefined> => stat(path).then((stats) => stats.size, () => undefined)

/**
 * Watches `path` every few ms until `stop()`: the largest size it had, and
 * whether it ever shrank while it existed.
 */
function watchSize (path: string): { stop: () => Promise<{ max: number, shrank: string | undefined, samples: number }> } {
  let max = 0
  let last = 0
  let shrank: string | undefined
  let samples = 0
  const stopped = new AbortController()
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      const size = await sizeOf(path)
      if (size !== undefined) {
        samples++
        if (size < last && shrank === undefined) shrank = `${last} -> ${size}`
        last = size
        max = Math.max(max, size)
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  })()
  return {
    stop: async () => {
      stopped.abort()
      await loop
      return { max, shrank, samples }
    }
  }
}

t.test('20 concurrent uploads through a round-robin proxy over 3 processes are byte-exact', async (t) => {
  const dir = t.testdir()
  const servers = await startProcesses(t, dir, 3)
  const proxy = await roundRobinProxy(t, servers.map((server) => server.port))

  const chunkSizes = [256 * KiB, 512 * KiB, MiB]
  const uploads = Array.from({ length: 20 }, (_, index) => {
    // 1 to 8 MiB, odd sizes, so that last chunks are short
    const size = MiB + Math.floor(((index * 7) % 20) / 19 * 7 * MiB) + index * 101
    const data = seededBytes(size, 1000 + index)
    const chunkSize = chunkSizes[index % chunkSizes.length] as number
    const name = `upload-${index}.bin`
    return { index, size, data, chunkSize, name, ...track(data, { endpoint: proxy.endpoint, chunkSize, metadata: { filename: name } }) }
  })
  const started = Date.now()
  for (const { upload } of uploads) upload.start()
  const results = await within('20 concurrent uploads', Promise.allSettled(uploads.map(({ finished }) => finished)), 40_000)
  t.comment(`20 uploads, ${uploads.reduce((sum, { size }) => sum + size, 0)} bytes, in ${Date.now() - started} ms`)

  results.forEach((result, index) => {
    t.equal(result.status, 'fulfilled', `upload ${index} succeeded${result.status === 'rejected' ? `: ${String(result.reason)}` : ''}`)
  })
  for (const { index, data, name, size, chunkSize, exchanges } of uploads) {
    const stored = await readFile(join(dir, name)).catch(() => Buffer.alloc(0))
    t.equal(firstDifference(stored, data), -1, `upload ${index} (${size} bytes) is byte-exact`)
    const patches = exchanges.filter((exchange) => exchange.method === 'PATCH')
    t.equal(patches.length, Math.ceil(size / chunkSize), `upload ${index}: one PATCH per chunk, none refused`)
    t.ok(patches.every((patch) => patch.status === 204), `upload ${index}: every PATCH answered 204`)
  }

  // the proxy saw each request on a connection of its own: which process served which PATCH
  const patches = proxy.requests(/^PATCH /)
  t.equal(patches.length, uploads.reduce((sum, { exchanges }) => sum + exchanges.filter((exchange) => exchange.method === 'PATCH').length, 0),
    'every PATCH came on a new connection')
  const servedBy = new Map<string, Set<number>>()
  for (const { requestLine, backend } of patches) {
    const path = (requestLine as string).split(' ')[1] as string
    servedBy.set(path, (servedBy.get(path) ?? new Set()).add(backend))
  }
  t.equal(servedBy.size, 20, 'PATCHes of all 20 uploads')
  const spread = [...servedBy.values()].filter((backends) => backends.size > 1).length
  t.ok(spread >= 10, `the PATCHes of ${spread} of 20 uploads were served by more than one process`)
  for (const server of servers) {
    t.ok(patches.some(({ backend }) => backend === server.port), `process ${server.pid} served PATCHes`)
  }

  await noLocksLeft(t, dir)
  const state = (await readdir(join(dir, '.metadata'))).sort()
  t.same(state, uploads.map(({ upload }) => `${uidOf(new URL(upload.url as string).pathname)}.json`).sort(), 'only the 20 records are left')
})

/** Whether tus-js-client's own rule retries an answer: anything but a 4xx, or 409 or 423. */
const retriedByDefault = (status: number | undefined): boolean => status === undefined || status < 400 || status >= 500 || status === 409 || status === 423

/**
 * Two tus-js-client uploads of the same data, given the same upload URL and
 * started together through the proxy, so that their PATCHes land on different
 * processes and take the upload from each other. Checks what must hold
 * whoever wins: the file byte-exact, the .part never past the size nor shrinking.
 */
async function race (t: Test, dir: string, proxy: RoundRobinProxy, name: string, seed: number, options: UploadOptions): Promise<Exchange[][]> {
  const size = 6 * MiB + 333
  const data = seededBytes(size, seed)
  const path = await create(proxy.port, size, name)
  const uploadUrl = `${proxy.endpoint}/${uidOf(path)}`
  const watcher = watchSize(join(dir, '.metadata', `${uidOf(path)}.part`))
  const before = proxy.connections.length

  const racers = [0, 1].map(() => track(data, { uploadUrl, chunkSize: 512 * KiB, metadata: { filename: name }, ...options }))
  const started = Date.now()
  for (const { upload } of racers) upload.start()
  const results = await within('both racers', Promise.allSettled(racers.map(({ finished }) => finished)), 40_000)
  const { max, shrank, samples } = await watcher.stop()
  t.comment(`race finished in ${Date.now() - started} ms; ${samples} samples of the .part file`)
  racers.forEach(({ exchanges }, index) => {
    t.comment(`racer ${index}: ${exchanges.map((exchange) => `${exchange.method}${exchange.offset === undefined ? '' : `@${exchange.offset}`} ${exchange.status ?? 'error'}${exchange.answeredOffset === undefined ? '' : `->${exchange.answeredOffset}`}`).join(', ')}`)
  })

  results.forEach((result, index) => {
    t.equal(result.status, 'fulfilled', `racer ${index} finished successfully${result.status === 'rejected' ? `: ${String(result.reason)}` : ''}`)
  })
  const stored = await readFile(join(dir, name)).catch(() => Buffer.alloc(0))
  t.equal(stored.length, size, 'the completed file has the upload\'s size')
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.ok(samples > 0 && max <= size, `the .part file never grew past the size (largest seen ${max} of ${size})`)
  t.equal(shrank, undefined, 'the .part file never shrank')
  const exchanges = racers.flatMap(({ exchanges }) => exchanges)
  t.ok(exchanges.every(({ answeredOffset }) => Number(answeredOffset ?? 0) <= size), 'no answer gave an offset past the size')
  const failures = exchanges.filter(({ status }) => status === undefined || status >= 300)
  t.ok(failures.length > 0, `the clients did collide (${failures.length} requests failed)`)

  const patches = proxy.connections.slice(before).filter(({ requestLine }) => requestLine?.startsWith('PATCH ') === true)
  const backends = new Set(patches.map(({ backend }) => backend))
  t.ok(backends.size >= 2, `the PATCHes were served by ${backends.size} processes`)
  await noLocksLeft(t, dir)
  return racers.map(({ exchanges }) => exchanges)
}

t.test('two clients racing on one upload through different processes', async (t) => {
  const dir = t.testdir()
  const servers = await startProcesses(t, dir, 3)
  // paced, so that a PATCH lasts long enough for the other client to come in while it is running
  const proxy = await roundRobinProxy(t, servers.map((server) => server.port), { bytesPerSecond: 8 * MiB })
  const retryDelays = [0, 20, 50, 100, 200, 300, 500, 500, 1000, 1000]

  const exchanges = (await race(t, dir, proxy, 'race.bin', 77, { retryDelays })).flat()
  const unretryable = exchanges.filter(({ status }) => !retriedByDefault(status))
  t.same(unretryable.map(({ method, offset, status, body }) => ({ method, offset, status, body })), [],
    'every failure is one tus-js-client retries (409, 423, 5xx or a broken connection)')
  const interrupted = exchanges.filter(({ status, body }) => status === 409 && body?.includes('FST_TUS_INTERRUPTED') === true).length
  t.ok(interrupted >= 1, `${interrupted} PATCHes were taken over by the other client, and their clients went on`)
})

t.test('a holder killed with SIGKILL mid-PATCH: another process takes the upload at once', async (t) => {
  const dir = t.testdir()
  const servers = await startProcesses(t, dir, 3)
  const [victim, heir] = servers as [ServerProcess, ServerProcess, ServerProcess]
  const proxy = await roundRobinProxy(t, servers.map((server) => server.port))
  const size = 4 * MiB + 123
  const data = seededBytes(size, 99)
  const path = await create(victim.port, size, 'killed.bin')
  const uid = uidOf(path)
  const lock = join(dir, '.metadata', `${uid}.lock`)
  const part = join(dir, '.metadata', `${uid}.part`)

  // a client that sends part of its body and stalls: its PATCH holds the upload's lock in the victim
  const K = MiB + 17
  const stalled = await RawClient.open(t, victim.port)
  await stalled.write(patchHead(path, 0, size))
  await stalled.write(data.subarray(0, K))
  await waitFor(`${K} bytes on disk`, async () => (await sizeOf(part)) === K ? true : undefined, 5000)
  const owner = JSON.parse(await readFile(join(lock, 'owner'), 'utf8')) as { pid: number }
  t.equal(owner.pid, victim.pid, 'the victim process holds the lock')

  await victim.kill('SIGKILL')
  t.match(await victim.exited, { signal: 'SIGKILL' }, 'the victim is dead')
  await stalled.waitClosed()
  t.ok(await stat(lock), 'the dead holder\'s lock is still there')

  const killed = Date.now()
  const head = await send(heir.port, 'HEAD', path, {}, undefined, 2000)
  t.equal(head.status, 200)
  t.equal(head.headers['upload-offset'], String(K), 'HEAD on another process: the bytes the victim received are kept')
  const next = data.subarray(K, K + MiB)
  const patched = await send(heir.port, 'PATCH', path, { 'content-type': OCTET, 'upload-offset': String(K) }, next, 2000)
  const took = Date.now() - killed
  t.equal(patched.status, 204, `a new PATCH on another process is answered 204 in ${took} ms`)
  t.ok(took < 2000, `answered within 2 s (${took} ms)`)
  t.equal(patched.headers['upload-offset'], String(K + MiB))

  // the rest through the proxy, the dead process still in its list: connections to it are reset, and retried
  const rest = track(data, {
    uploadUrl: `${proxy.endpoint}/${uid}`, chunkSize: 512 * KiB, retryDelays: [0, 50, 100, 200, 400, 800], metadata: { filename: 'killed.bin' }
  })
  rest.upload.start()
  await within('the rest of the upload', rest.finished, 15_000)
  const refused = proxy.connections.filter(({ backend }) => backend === victim.port)
  t.ok(refused.length > 0 && refused.every(({ backendError }) => backendError === 'ECONNREFUSED'),
    `the ${refused.length} connections to the dead process were refused, and the client retried`)
  t.ok(rest.exchanges.some(({ status }) => status === undefined), 'the client saw those as broken connections')

  const stored = await readFile(join(dir, 'killed.bin')).catch(() => Buffer.alloc(0))
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  await noLocksLeft(t, dir)
  t.same(await readdir(join(dir, '.metadata')), [`${uid}.json`], 'only the record is left')
  for (const server of servers.slice(1)) t.equal(server.child.exitCode, null, `process ${server.pid} still runs`)
})
