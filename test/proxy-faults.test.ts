import { readdir, readFile } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { MemoryLocker, errors, type CompletedResource, type FastifyTusOptions, type Lock, type Locker } from '../lib/index.js'
import { faultProxy, type FaultProxy, type ProxiedConnection } from './fault-proxy.js'
import { createUpload, encodeMetadata, firstDifference, offsetOf, seededBytes, uidOf } from './helpers.js'
import { RawClient, patchHead, type RawResponse } from './raw-client.js'
import { startServer, waitFor, within } from './server.js'

/*
 * Real network faults between a client and a real server, made by a TCP proxy
 * (test/fault-proxy.ts): connections reset mid-body, half-open clients, slow
 * links, and tus-js-client retrying over all that.
 */

const KiB = 1024
const MiB = 1024 * KiB

/** A MemoryLocker that counts the locks held and released, to see when a request has let go of its upload. */
function countingLocker (): { locker: Locker, locks: { held: number, released: number } } {
  const inner = new MemoryLocker()
  const locks = { held: 0, released: 0 }
  const counted = (lock: Lock | undefined): Lock | undefined => {
    if (lock === undefined) return undefined
    locks.held++
    let released = false
    return {
      signal: lock.signal,
      release () {
        if (!released) {
          released = true
          locks.held--
          locks.released++
        }
        return lock.release()
      }
    }
  }
  return {
    locks,
    locker: {
      acquire: async (key) => counted(await inner.acquire(key)) as Lock,
      tryAcquire: async (key) => counted(await inner.tryAcquire(key))
    }
  }
}

interface Setup {
  app: FastifyInstance
  dir: string
  proxy: FaultProxy
  path: string
  data: Buffer
  name: string
  locks: { held: number, released: number }
  /** `locks.released` once the upload was created. */
  releasedAtCreation: number
  /** The server's side of every connection it accepted, by the client's port. */
  serverSockets: Map<number | undefined, Socket>
  done: Array<{ resource: CompletedResource, filePath: string }>
}

/** A server, a fault proxy in front of it, and one upload of `size` known bytes named `name`. */
async function setup (t: Test, size: number, name: string, options: Partial<FastifyTusOptions> = {}): Promise<Setup> {
  const done: Setup['done'] = []
  const { locker, locks } = countingLocker()
  const { app, dir, port } = await startServer(t, {
    locker, onUploadDone: (_request, resource, filePath) => { done.push({ resource, filePath }) }, ...options
  })
  const serverSockets: Setup['serverSockets'] = new Map()
  app.server.on('connection', (socket: Socket) => serverSockets.set(socket.remotePort, socket))
  const proxy = await faultProxy(t, port)
  const { response, path } = await createUpload(app, { 'upload-length': String(size), 'upload-metadata': encodeMetadata({ filename: name }) })
  if (response.statusCode !== 201) throw new Error(`creation answered ${response.statusCode}`)
  return { app, dir, proxy, path, data: seededBytes(size, size), name, locks, releasedAtCreation: locks.released, serverSockets, done }
}

/** The first index at which two buffers differ, -1 when they are equal. */

/** A whole PATCH on a new connection through the proxy; the answer must come within `timeout`. */
async function sendPatch (t: Test, proxy: FaultProxy, path: string, offset: number, body: Buffer, timeout = 5000): Promise<RawResponse> {
  const client = await RawClient.open(t, proxy.port)
  await client.write(patchHead(path, offset, body.length))
  await client.write(body)
  return client.response(timeout)
}

/** The upload is complete, its file is `data`, `onUploadDone` ran once, and only the record is left. */
async function checkCompleted (t: Test, { app, dir, path, data, name, done }: Setup): Promise<void> {
  const stored = await readFile(join(dir, name))
  t.equal(stored.length, data.length, 'the completed file has the full size')
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.equal(done.length, 1, 'onUploadDone called once')
  t.equal(await offsetOf(app, path), data.length, 'HEAD gives the full offset')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`], 'only the record stays')
}

/** The bytes the server read from a proxied connection (all the kernel gave it, even after a reset). */
function serverRead ({ serverSockets }: Setup, connection: ProxiedConnection): number {
  const socket = serverSockets.get(connection.sourcePort)
  if (socket === undefined) throw new Error(`the server has no socket from port ${connection.sourcePort}`)
  return socket.bytesRead
}

/** After a reset: the PATCH let go of the upload, and the server kept exactly the body bytes the proxy forwarded. */
async function checkKept (t: Test, upload: Setup, connection: ProxiedConnection, headLength: number): Promise<number> {
  const { app, dir, path, data, locks, releasedAtCreation } = upload
  t.ok(connection.wasReset, 'the connection was reset')
  t.equal(connection.unsentAtReset, 0, 'every forwarded byte had reached the server\'s kernel at the reset')
  const kept = connection.forwarded - headLength
  await waitFor('the cut PATCH to let go of the upload', () => locks.released > releasedAtCreation && locks.held === 0 ? true : undefined, 5000, 2)
  t.equal(serverRead(upload, connection), connection.forwarded, 'the server read every byte the proxy forwarded')
  t.equal(await offsetOf(app, path), kept, `HEAD reports the ${kept} body bytes the proxy forwarded`)
  const part = await readFile(join(dir, '.metadata', `${uidOf(path)}.part`))
  t.equal(firstDifference(part, data.subarray(0, kept)), -1, 'the kept bytes are the ones sent')
  return kept
}

t.test('a connection reset mid-body keeps every byte that reached the server, and the upload resumes byte-exact', async (t) => {
  // K bytes in: while the server streams the body to disk, or (most runs) before its handler reads any
  for (const K of [1_000_003, 40_001]) {
    t.test(`cutAfter: a reset as soon as the head and ${K} body bytes have reached the server`, async (t) => {
      const upload = await setup(t, 2 * MiB, 'cut.bin')
      const { proxy, path, data } = upload
      const head = patchHead(path, 0, data.length)
      proxy.onConnection = (connection) => { if (connection.index === 0) connection.cutAfter(head.length + K) }
      const client = await RawClient.open(t, proxy.port)
      await client.tryWrite(head)
      await client.tryWrite(data)
      await client.waitClosed(5000)
      const connection = await proxy.connection(0)
      t.equal(connection.forwarded, head.length + K, 'the proxy forwarded exactly the head and K body bytes')
      t.ok(connection.received > connection.forwarded, 'the client had sent more')
      const kept = await checkKept(t, upload, connection, head.length)
      t.equal(kept, K)

      const rest = await sendPatch(t, proxy, path, kept, data.subarray(kept))
      t.equal(rest.status, 204, 'the upload resumes at the offset HEAD gave')
      t.equal(rest.headers['upload-offset'], String(data.length))
      await checkCompleted(t, upload)
    })
  }

  t.test('cutAfter with no wait: a reset while bytes are still on their way to the server', async (t) => {
    const upload = await setup(t, 2 * MiB, 'cut-at-once.bin')
    const { app, proxy, path, data, locks, releasedAtCreation } = upload
    const head = patchHead(path, 0, data.length)
    const cut = head.length + 1_000_003
    proxy.onConnection = (connection) => { if (connection.index === 0) connection.cutAfter(cut, 0) }
    const client = await RawClient.open(t, proxy.port)
    await client.tryWrite(head)
    await client.tryWrite(data)
    await client.waitClosed(5000)
    const connection = await proxy.connection(0)
    t.equal(connection.forwarded, cut)
    const unsent = connection.unsentAtReset ?? NaN
    await waitFor('the cut PATCH to let go of the upload', () => locks.released > releasedAtCreation && locks.held === 0 ? true : undefined, 5000, 2)
    const kept = await offsetOf(app, path)
    const reached = serverRead(upload, connection) - head.length
    // what waited in the proxy's kernel is lost (unacknowledged bytes may still have made it)
    t.ok(reached >= cut - head.length - unsent && reached <= cut - head.length,
      `${reached} body bytes reached the server (${cut - head.length} forwarded, ${unsent} of them not acknowledged at the reset)`)
    t.equal(kept, reached, 'HEAD reports every body byte that reached the server')
    const part = await readFile(join(upload.dir, '.metadata', `${uidOf(path)}.part`))
    t.equal(firstDifference(part, data.subarray(0, kept)), -1, 'the kept bytes are the ones sent')
    const rest = await sendPatch(t, proxy, path, kept, data.subarray(kept))
    t.equal(rest.status, 204, 'the upload resumes at the offset HEAD gave')
    await checkCompleted(t, upload)
  })

  t.test('a half-open client, then a reset (a NAT or firewall dropping the connection)', async (t) => {
    const upload = await setup(t, 3 * MiB, 'dropped.bin')
    const { proxy, path, data } = upload
    const K = 1_048_577
    const head = patchHead(path, 0, data.length)
    const client = await RawClient.open(t, proxy.port)
    const connection = await proxy.connection(0)
    await client.write(head)
    await client.write(data.subarray(0, K))
    await connection.hasForwarded(head.length + K)
    connection.stall()
    await client.write(data.subarray(K, K + 512 * KiB)) // into the void
    await waitFor('the proxy to hold the bytes sent after the stall', () => connection.held === 512 * KiB ? true : undefined, 2000, 2)
    await connection.flushed()
    connection.reset()
    await client.waitClosed()
    t.equal(connection.forwarded, head.length + K, 'nothing after the stall reached the server')
    t.equal(await checkKept(t, upload, connection, head.length), K)

    const rest = await sendPatch(t, proxy, path, K, data.subarray(K))
    t.equal(rest.status, 204, 'the upload resumes at K')
    await checkCompleted(t, upload)
  })
})

t.test('a half-open client with a short idleTimeout is ended with 408, its bytes kept and the upload unlocked', async (t) => {
  const idleTimeout = 300
  const upload = await setup(t, 2 * MiB, 'idle.bin', { idleTimeout })
  const { app, proxy, path, data, locks } = upload
  const K = 654_321
  const head = patchHead(path, 0, data.length)
  const stalled = await RawClient.open(t, proxy.port)
  const connection = await proxy.connection(0)
  await stalled.write(head)
  await stalled.write(data.subarray(0, K))
  await connection.hasForwarded(head.length + K)
  const stalledAt = Date.now()
  connection.stall()
  await stalled.write(data.subarray(K, K + 256 * KiB)) // the client goes on sending; nothing arrives

  const answer = await stalled.response(3000)
  const elapsed = Date.now() - stalledAt
  t.equal(answer.status, 408, 'the stalled PATCH is answered 408')
  t.equal(JSON.parse(answer.body).code, 'FST_TUS_IDLE_TIMEOUT')
  t.equal(answer.headers['upload-offset'], String(K), 'with the offset it reached')
  t.ok(elapsed >= idleTimeout - 50, `not before the idle timeout (${elapsed} ms)`)
  t.ok(elapsed < idleTimeout + 700, `soon after the idle timeout (${elapsed} ms)`)
  await stalled.waitClosed()
  t.pass('the connection was closed')
  t.equal(connection.forwarded, head.length + K, 'no byte sent after the stall reached the server')
  t.ok(connection.received > connection.forwarded, 'the client did send more')

  t.equal(locks.held, 0, 'the stalled PATCH let go of the upload')
  t.equal(await offsetOf(app, path), K, 'its bytes are kept')
  const started = Date.now()
  const rest = await sendPatch(t, proxy, path, K, data.subarray(K), 1000)
  const restElapsed = Date.now() - started
  t.equal(rest.status, 204, 'a new PATCH completes the upload')
  t.ok(restElapsed < 1000, `at once (${restElapsed} ms)`)
  await checkCompleted(t, upload)
})

t.test('with the default idleTimeout, a new connection of the same client takes over a half-open one at once', async (t) => {
  const upload = await setup(t, 3 * MiB, 'taken-over.bin')
  const { app, proxy, path, data } = upload
  const K = 777_777
  const head = patchHead(path, 0, data.length)
  const stalled = await RawClient.open(t, proxy.port)
  const connection = await proxy.connection(0)
  await stalled.write(head)
  await stalled.write(data.subarray(0, K))
  await connection.hasForwarded(head.length + K)
  connection.stall()
  await stalled.write(data.subarray(K, K + 256 * KiB))
  await waitFor('the bytes written to disk', async () => (await offsetOf(app, path)) === K ? true : undefined, 5000, 5)

  const started = Date.now()
  const second = await sendPatch(t, proxy, path, K, data.subarray(K), 1000)
  const elapsed = Date.now() - started
  t.equal(second.status, 204, 'the new PATCH proceeds')
  t.equal(second.headers['upload-offset'], String(data.length))
  t.ok(elapsed < 500, `without waiting for the half-open one (${elapsed} ms)`)
  const first = await stalled.response(2000)
  t.equal(first.status, new errors.FST_TUS_INTERRUPTED().statusCode, 'the half-open PATCH is answered as taken over')
  t.equal(JSON.parse(first.body).code, 'FST_TUS_INTERRUPTED')
  t.equal(first.headers['upload-offset'], String(K), 'with the offset it reached')
  await stalled.waitClosed()
  t.equal(connection.forwarded, head.length + K, 'no byte sent after the stall reached the server')
  await checkCompleted(t, upload)
})

t.test('a slow drip, slower than the link but faster than idleTimeout, completes byte-exact', async (t) => {
  const upload = await setup(t, 50 * KiB, 'drip.bin', { idleTimeout: 200 })
  const { proxy, path, data } = upload
  proxy.onConnection = (connection) => connection.drip(KiB, 20)
  const head = patchHead(path, 0, data.length)
  const started = Date.now()
  const client = await RawClient.open(t, proxy.port)
  await client.write(head)
  await client.write(data)
  const connection = await proxy.connection(0)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const midway = connection.forwarded
  const answer = await client.response(5000)
  const elapsed = Date.now() - started
  t.equal(answer.status, 204, 'the dripped PATCH completes')
  t.equal(answer.headers['upload-offset'], String(data.length))
  t.ok(midway > 0 && midway < 40 * KiB, `the body was dripped (${midway} bytes after 500 ms)`)
  t.ok(elapsed >= 800, `over about a second (${elapsed} ms)`)
  t.equal(connection.forwarded, head.length + data.length)
  await checkCompleted(t, upload)
})

/** The PATCH a proxied connection carried: its Upload-Offset and the payload bytes of its body that got through. */
function patchThrough (connection: ProxiedConnection): { offset: number, bodyBytes: number } | undefined {
  const bytes = connection.forwardedBytes()
  const start = bytes.indexOf('PATCH ')
  const headEnd = bytes.indexOf('\r\n\r\n', start)
  if (start === -1 || headEnd === -1) return undefined
  const headers = new Map(bytes.subarray(start, headEnd).toString('latin1').split('\r\n').slice(1).map((line) => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
  }))
  const body = bytes.subarray(headEnd + 4)
  const chunked = headers.get('transfer-encoding')?.toLowerCase() === 'chunked'
  return { offset: Number(headers.get('upload-offset')), bodyBytes: chunked ? chunkedPayload(body) : body.length }
}

/** The payload bytes in a chunked body that may be cut anywhere (a cut chunk counts the bytes it got). */
function chunkedPayload (body: Buffer): number {
  let total = 0
  for (let position = 0; ;) {
    const lineEnd = body.indexOf('\r\n', position)
    if (lineEnd === -1) return total
    const size = parseInt(body.subarray(position, lineEnd).toString('latin1'), 16)
    if (size === 0) return total
    const got = Math.min(size, body.length - (lineEnd + 2))
    total += got
    if (got < size) return total
    position = lineEnd + 2 + size + 2
  }
}

/** A PATCH as the server saw it: the proxy's port it came from, its `Upload-Offset`, and its answer once given. */
interface ServerAnswer {
  port: number | undefined
  offset: string | string[] | undefined
  status?: number
  answeredOffset?: ReturnType<FastifyReply['getHeader']>
}

interface Exchange {
  method: string
  status?: number
  responseOffset?: string | undefined
}

t.test('tus-js-client with retryDelays completes byte-exact when its first two connections are reset mid-upload', async (t) => {
  const size = 2 * MiB
  const done: CompletedResource[] = []
  // the server's side of every PATCH, in order of arrival (a client whose connection was cut never sees the answer)
  const answers: ServerAnswer[] = []
  const { dir, port } = await startServer(t, {
    onUploadDone: (_request, resource) => { done.push(resource) },
    onRequest: (request, reply, next) => {
      if (request.method === 'PATCH') {
        const answer: ServerAnswer = { port: request.socket.remotePort, offset: request.headers['upload-offset'] }
        answers.push(answer)
        reply.raw.once('finish', () => {
          answer.status = reply.statusCode
          answer.answeredOffset = reply.getHeader('upload-offset')
        })
      }
      next()
    }
  })
  const proxy = await faultProxy(t, port)
  const data = seededBytes(size, 77)
  const cut = 300_000
  // tus-js-client may send a HEAD on a connection of its own: every connection is
  // cut after `cut` bytes (which only a PATCH reaches) until two have been
  const cuts: ProxiedConnection[] = []
  proxy.onConnection = (connection) => { if (cuts.length < 2) connection.cutAfter(cut) }
  proxy.onReset = (connection) => {
    cuts.push(connection)
    if (cuts.length === 2) for (const other of proxy.connections) other.cutAfter(Infinity)
  }

  const exchanges: Exchange[] = []
  const pending = new Map<tus.HttpRequest, Exchange>()
  let client!: tus.Upload
  const finished = new Promise<void>((resolve, reject) => {
    client = new tus.Upload(data, {
      endpoint: `http://127.0.0.1:${proxy.port}/uploads`,
      retryDelays: [0, 50, 100, 200],
      metadata: { filename: 'retried.bin' },
      onBeforeRequest (request) {
        const exchange: Exchange = { method: request.getMethod() }
        exchanges.push(exchange)
        pending.set(request, exchange)
      },
      onAfterResponse (request, response) {
        const exchange = pending.get(request)
        if (exchange === undefined) return
        exchange.status = response.getStatus()
        exchange.responseOffset = response.getHeader('Upload-Offset')
      },
      onSuccess: () => resolve(),
      onError: (error) => reject(error)
    })
  })
  const started = Date.now()
  client.start()
  await within('the upload through the faulty proxy', finished, 15_000)
  t.pass(`tus-js-client reported success after ${Date.now() - started} ms, in ${exchanges.length} requests over ${proxy.connections.length} connections`)

  t.equal(cuts.length, 2, 'two connections were cut')
  t.equal(proxy.connections.filter((connection) => connection.wasReset).length, 2, 'no other connection was reset')
  for (const connection of cuts) {
    t.equal(connection.forwarded, cut, `connection ${connection.index} forwarded exactly ${cut} bytes`)
    t.equal(connection.unsentAtReset, 0, `connection ${connection.index}: all of them had reached the server's kernel`)
  }

  const patches = exchanges.filter((exchange) => exchange.method === 'PATCH')
  t.equal(patches.at(-1)?.status, 204, 'the last PATCH completed the upload')
  t.equal(patches.at(-1)?.responseOffset, String(size))

  // the server kept every body byte each cut PATCH got through: the PATCH after
  // it starts there (from HEAD), or learns it from a 409 if HEAD came too early
  // (before the server had written what the cut PATCH brought). A cut PATCH may
  // itself have come too early: refused with a 409, it kept none of its bytes
  for (const [index, connection] of cuts.entries()) {
    const through = patchThrough(connection)
    const position = answers.findIndex((answer) => answer.port === connection.sourcePort)
    const answer = answers[position]
    if (through === undefined || answer === undefined) {
      t.fail(`cut connection ${connection.index} carried no PATCH the server saw`)
      continue
    }
    t.ok(through.bodyBytes > 0, `cut ${index}: a PATCH from ${through.offset} cut after ${through.bodyBytes} body bytes`)
    t.equal(answer.offset, String(through.offset), `cut ${index}: the server saw that PATCH`)
    const refused = answer.status === 409
    const expected = refused ? String(answer.answeredOffset) : String(through.offset + through.bodyBytes)
    const next = answers[position + 1]
    const serverOffset = next?.status === 409 ? String(next.answeredOffset) : next?.offset
    t.equal(serverOffset, expected, refused
      ? `cut ${index} came too early (409 at ${expected}): the upload stands there`
      : `after cut ${index} the upload stands at ${expected}, every byte kept`)
  }

  const stored = await readFile(join(dir, 'retried.bin'))
  t.equal(stored.length, size)
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.equal(done.length, 1, 'onUploadDone called once')
  t.equal(done[0]?.fileName, 'retried.bin')
})
