// Crash chaos: one tus server process (the fixture, file locker) on one upload
// directory, behind a round-robin proxy so that clients keep one address, is
// killed with SIGKILL at random instants and restarted, over and over, while
// concurrent uploads (fixed and deferred lengths, creation with and without a
// body, PATCHes with and without Upload-Checksum) go on through clients that
// resume after any failure (HEAD, then PATCH from the server's offset). At the
// end: every completed file is byte-exact, no offset the server ever gave went
// backwards, every record in .metadata parses and belongs to an upload, and once
// `app.tusCleanup()` has run (the fixture has no route for it: an app of this
// process runs it, the server processes stopped) nothing is left that belongs to
// no upload but temporary files younger than a minute.
//
// Seeded: CHAOS_SEED (an integer; default below) fixes the kill delays, the
// upload plans and the clients' retry delays; CHAOS_KILLS is the number of kills
// (default 30). Timing still varies with the machine: the same seed gives the
// same delays, not the same interleaving.
//
// Restarts: the fixture loads TypeScript and takes a second or two to listen, so
// the next server processes are started ahead (STANDBYS of them, idle, on ports
// of their own) and a restart points the proxy at one of them once the killed
// process has been reaped. Only one process ever gets requests.
import { createHash } from 'node:crypto'
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import tus from '../lib/index.js'
import { OCTET, encodeMetadata, firstDifference, seededBytes } from './helpers.js'
import { roundRobinProxy, startServerProcess, type ServerProcess } from './processes.js'
import { within } from './server.js'

// ---------------------------------------------------------------- configuration

function envInteger (name: string, fallback: number, least: number): number {
  const value = process.env[name]
  if (value === undefined || value === '') return fallback
  const parsed = Number(value)
  if (!Number.isSafeInteger(parsed) || parsed < least) throw new Error(`${name} must be an integer of at least ${least}, got ${JSON.stringify(value)}`)
  return parsed
}

const SEED = envInteger('CHAOS_SEED', 20250917, 0)
const KILLS = envInteger('CHAOS_KILLS', 30, 1)
/** Server processes started ahead of the restarts that will need them. */
const STANDBYS = 2
const UPLOADS = 8
/** The time between a restart and the next kill, in ms: drawn in this range. */
const KILL_DELAY = { min: 20, max: 300 }
/** A client waits this long (drawn in this range, ms) after a failed request. */
const RETRY_DELAY = { min: 20, max: 80 }
/** The longest any one request may take (a lock of a process killed before it named itself waits 2 s). */
const REQUEST_TIMEOUT = 15_000
/** How long the uploads may take to finish once the killing is over. */
const FINISH_TIMEOUT = 60_000
/** Bodies are written in slices of this size (and paced per slice while the chaos lasts). */
const SLICE = 16 * 1024
/** A client gives an upload up after this many answers it cannot make sense of. */
const MAX_ANOMALIES = 10

const KiB = 1024
const MiB = 1024 * KiB

// the runner's timeout for this file: the chaos (each restart bounded by the fixture's start timeout), the finish, the checks
t.setTimeout(120_000 + KILLS * 3_000)

// ---------------------------------------------------------------- seeded randomness

/** mulberry32: a small, fast, seeded PRNG; floats in [0, 1). */
function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let value = state
    value = Math.imul(value ^ (value >>> 15), value | 1)
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61)
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296
  }
}

const between = (random: () => number, { min, max }: { min: number, max: number }): number => min + Math.floor(random() * (max - min + 1))

/** The delays between each restart (the first start included) and the next kill: a function of the seed alone. */
function killDelays (seed: number, kills: number): number[] {
  const random = prng(seed)
  return Array.from({ length: kills }, () => between(random, KILL_DELAY))
}

// ---------------------------------------------------------------- the uploads

type ChecksumMode = 'never' | 'always' | 'alternate'
type Algorithm = 'sha1' | 'md5' | 'sha256' | 'sha512'

/** What varies between uploads, cycled over their index. */
const FEATURES: ReadonlyArray<{ checksum: ChecksumMode, algorithm: Algorithm, deferred: boolean, withBody: boolean }> = [
  { checksum: 'never', algorithm: 'sha1', deferred: false, withBody: false },
  { checksum: 'always', algorithm: 'sha1', deferred: false, withBody: true },
  { checksum: 'alternate', algorithm: 'md5', deferred: true, withBody: false },
  { checksum: 'never', algorithm: 'sha1', deferred: true, withBody: true },
  { checksum: 'always', algorithm: 'sha256', deferred: true, withBody: false },
  { checksum: 'never', algorithm: 'sha1', deferred: false, withBody: true },
  { checksum: 'alternate', algorithm: 'sha512', deferred: false, withBody: false },
  { checksum: 'always', algorithm: 'md5', deferred: false, withBody: false }
]

interface Plan {
  index: number
  size: number
  data: Buffer
  /** Bytes per PATCH (and in the body of a creation with one). */
  chunkSize: number
  checksum: ChecksumMode
  algorithm: Algorithm
  /** Created with `Upload-Defer-Length: 1`; the length comes with the PATCH that carries the last byte. */
  deferred: boolean
  /** Created with its first bytes in the POST (creation-with-upload). */
  withBody: boolean
  /** How many bytes the POST carries when `withBody`. */
  creationBody: number
  /** The upload starts once this many kills were made: creations are spread over the chaos. */
  startAfterKills: number
  /** Bytes per second its bodies are sent at while the chaos lasts (full speed after). */
  rate: number
}

/**
 * The uploads, from the seed: 2 to 8 MiB (odd sizes), half of them started at
 * once and the others after some kills, each paced so that, without the time
 * lost to kills, it would take 30% to 85% of the server's remaining up-time
 * (the sum of the kill delays): the clients lose much of it to reconnecting
 * and resending, so some finish during the chaos and most are still going when
 * the last kill comes.
 */
function planUploads (seed: number, delays: readonly number[]): Plan[] {
  const random = prng(seed ^ 0x5bd1e995)
  const upTimeFrom = (kill: number): number => delays.slice(kill).reduce((sum, delay) => sum + delay, 0)
  return Array.from({ length: UPLOADS }, (_, index) => {
    const features = FEATURES[index % FEATURES.length] as (typeof FEATURES)[number]
    const size = 2 * MiB + Math.floor(random() * 6 * MiB) + 1 + Math.floor(random() * 1000)
    const chunkSize = features.checksum === 'never' ? between(random, { min: 256, max: 1024 }) * KiB : between(random, { min: 48, max: 160 }) * KiB
    const late = index - UPLOADS / 2
    const startAfterKills = late < 0 ? 0 : Math.floor((late + 1) * delays.length / UPLOADS)
    const upTime = Math.max(upTimeFrom(startAfterKills), 500) / 1000
    const rate = Math.ceil(size / upTime * (1.2 + random() * 2))
    const creationBody = between(random, { min: 16, max: 64 }) * KiB
    return { index, size, data: seededBytes(size, seed + 1000 + index), chunkSize, ...features, creationBody, startAfterKills, rate }
  })
}

// ---------------------------------------------------------------- a resuming tus client

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** A request a client has on the wire. */
interface InFlight {
  method: 'POST' | 'HEAD' | 'PATCH'
  /** It carries the upload's last byte (or the length that completes it). */
  last: boolean
}

interface Client {
  plan: Plan
  /** The `filename` it creates the upload with (changed when a crashed creation holds the first one). */
  name: string
  path?: string
  /** The server's offset as last answered; `undefined`: ask (HEAD) first. */
  offset?: number
  done: boolean
  failed?: string
  inFlight?: InFlight
  /** The largest offset any answer gave: answers never go below it. */
  highest: number
  regressions: string[]
  anomalies: string[]
  /**
   * PATCHes refused (409) for an offset that is not the current one: a client
   * whose request broke while the server lived can ask (HEAD) before the server
   * has finished with that request; it asks again.
   */
  mismatches: number
  requests: { POST: number, HEAD: number, PATCH: number }
  /** Requests that got no answer (connection refused, reset, cut mid-answer). */
  broken: number
  /** Creations that got no answer: each may have left an upload nobody knows (a ghost). */
  unansweredPosts: number
  /** Creations refused (409) because a crashed earlier creation of this client holds the name. */
  nameConflicts: number
  random: () => number
}

/** Whether the bodies are paced (while the chaos lasts), and whether the clients must give up. */
const control = { paced: true, stop: false }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `req` can take more bytes, or is closed. */
function drained (req: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      req.off('drain', done)
      req.off('close', done)
      resolve()
    }
    req.on('drain', done)
    req.on('close', done)
  })
}

/**
 * One request on a connection of its own (so that a restart is seen at once),
 * with its body written in slices at `rate()` bytes per second (0: at once).
 * Rejects when the connection fails before a whole answer came, or after
 * REQUEST_TIMEOUT.
 */
function send (port: number, method: string, path: string, headers: Record<string, string>, body: Buffer | undefined, rate: () => number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let settled = false
    // once answered (or failed), the request is over: a body the server did not read is not left pending on the socket
    const settle = (action: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      action()
      req.destroy()
    }
    const all = { 'tus-resumable': '1.0.0', ...headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) }
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: all })
    const timer = setTimeout(() => {
      settle(() => reject(new Error(`${method} ${path}: no answer in ${REQUEST_TIMEOUT} ms`)))
      req.destroy()
    }, REQUEST_TIMEOUT)
    req.on('error', (error) => settle(() => reject(error)))
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => settle(() => resolve({ status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks).toString() })))
      res.on('error', (error) => settle(() => reject(error)))
      res.on('close', () => settle(() => reject(new Error(`${method} ${path}: the answer was cut`))))
    })
    if (body === undefined) {
      req.end()
      return
    }
    const write = async (): Promise<void> => {
      for (let at = 0; at < body.length; at += SLICE) {
        if (settled || req.destroyed) return
        const slice = body.subarray(at, at + SLICE)
        if (!req.write(slice)) await drained(req)
        const bytesPerSecond = rate()
        if (bytesPerSecond > 0) await sleep(slice.length * 1000 / bytesPerSecond)
      }
      if (!settled && !req.destroyed) req.end()
    }
    write().catch((error: unknown) => {
      settle(() => reject(error instanceof Error ? error : new Error(String(error))))
      req.destroy()
    })
  })
}

const uidOf = (path: string): string => path.split('/').pop() as string
/** The error an answer carries: its code, or its message (a 500 has no code). */
const errorCode = (answer: Answer): string => {
  try {
    const { code, message } = JSON.parse(answer.body) as { code?: unknown, message?: unknown }
    return typeof code === 'string' ? code : String(message)
  } catch {
    return answer.body.slice(0, 200)
  }
}

function checksumOf (plan: Plan, body: Buffer): string {
  return `${plan.algorithm} ${createHash(plan.algorithm).update(body).digest('base64')}`
}

/** Whether the chunk number `sequence` (counted over the upload's bodies) carries a checksum. */
function withChecksum (plan: Plan, sequence: number): boolean {
  return plan.checksum === 'always' || (plan.checksum === 'alternate' && sequence % 2 === 0)
}

/** An offset the server answered: never past the size, never below one it gave before (bytes received are kept). */
function sawOffset (client: Client, value: unknown, what: string): number | undefined {
  const offset = Number(value)
  if (typeof value !== 'string' || !Number.isSafeInteger(offset) || offset < 0 || offset > client.plan.size) {
    client.anomalies.push(`${what}: Upload-Offset ${JSON.stringify(value)} (size ${client.plan.size})`)
    return undefined
  }
  if (offset < client.highest) client.regressions.push(`${what}: offset ${offset} after ${client.highest}`)
  client.highest = Math.max(client.highest, offset)
  return offset
}

function anomaly (client: Client, what: string, answer: Answer): void {
  client.anomalies.push(`${what} answered ${answer.status} ${errorCode(answer)}`)
  client.offset = undefined
}

/**
 * One step of an upload: create it, ask where it stands, or send the next
 * chunk. A request without an answer throws (the caller waits and goes on);
 * an answer that makes no sense is an anomaly, and the client asks again.
 */
async function step (client: Client, port: number): Promise<void> {
  const { plan } = client
  const paced = (): number => control.paced ? plan.rate : 0
  const request = async (inFlight: InFlight, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> => {
    client.requests[inFlight.method]++
    client.inFlight = inFlight
    try {
      return await send(port, inFlight.method, path, headers, body, paced)
    } catch (error) {
      client.broken++
      if (inFlight.method === 'POST') client.unansweredPosts++
      client.offset = undefined
      throw error
    } finally {
      client.inFlight = undefined
    }
  }

  if (client.path === undefined) {
    const headers: Record<string, string> = { 'upload-metadata': encodeMetadata({ filename: client.name, index: String(plan.index) }) }
    if (plan.deferred) headers['upload-defer-length'] = '1'
    else headers['upload-length'] = String(plan.size)
    let body: Buffer | undefined
    if (plan.withBody) {
      body = plan.data.subarray(0, plan.creationBody)
      headers['content-type'] = OCTET
      if (withChecksum(plan, 0)) headers['upload-checksum'] = checksumOf(plan, body)
    }
    const created = await request({ method: 'POST', last: false }, '/uploads', headers, body)
    if (created.status === 409 && errorCode(created) === 'FST_TUS_FILE_EXISTS' && client.unansweredPosts > 0) {
      // an earlier creation of ours died after it reserved the name: that upload is unknown to us, and holds the name
      client.nameConflicts++
      client.name = `chaos-${plan.index}.retry-${client.nameConflicts}.bin`
      return
    }
    if (created.status !== 201 || typeof created.headers.location !== 'string') return anomaly(client, 'POST', created)
    client.path = new URL(created.headers.location, 'http://x').pathname
    client.offset = body === undefined ? 0 : sawOffset(client, created.headers['upload-offset'], 'POST')
    return
  }

  if (client.offset === undefined) {
    const head = await request({ method: 'HEAD', last: false }, client.path, {})
    if (head.status !== 200) {
      anomaly(client, 'HEAD', head)
      if (head.status === 404 || head.status === 410) client.failed = `HEAD answered ${head.status}: the upload is gone`
      return
    }
    const offset = sawOffset(client, head.headers['upload-offset'], 'HEAD')
    if (offset === undefined) return
    const length = head.headers['upload-length']
    if (length !== undefined && length !== String(plan.size)) client.anomalies.push(`HEAD: Upload-Length ${length}, not ${plan.size}`)
    if (length === undefined && head.headers['upload-defer-length'] !== '1') client.anomalies.push('HEAD: neither Upload-Length nor Upload-Defer-Length')
    if (length === String(plan.size) && offset === plan.size) {
      client.done = true
      return
    }
    client.offset = offset
    return
  }

  const offset = client.offset
  const end = Math.min(plan.size, offset + plan.chunkSize)
  const body = plan.data.subarray(offset, end)
  const headers: Record<string, string> = { 'content-type': OCTET, 'upload-offset': String(offset) }
  if (plan.deferred && end === plan.size) headers['upload-length'] = String(plan.size)
  if (withChecksum(plan, client.requests.PATCH + (plan.withBody ? 1 : 0))) headers['upload-checksum'] = checksumOf(plan, body)
  const patched = await request({ method: 'PATCH', last: end === plan.size }, client.path, headers, body)
  if (patched.status === 409 && errorCode(patched) === 'FST_TUS_OFFSET_MISMATCH') {
    client.mismatches++
    sawOffset(client, patched.headers['upload-offset'], `PATCH at ${offset} (409)`)
    client.offset = undefined
    return
  }
  if (patched.status !== 204) return anomaly(client, `PATCH at ${offset} (${body.length} bytes)`, patched)
  const answered = sawOffset(client, patched.headers['upload-offset'], `PATCH at ${offset}`)
  if (answered !== end) {
    client.anomalies.push(`PATCH at ${offset} of ${body.length} bytes answered 204 with offset ${answered}`)
    client.offset = undefined
    return
  }
  client.offset = end
  if (end === plan.size) client.done = true
}

/** Drives an upload to its end: step after step, a short (seeded) wait after each failure. */
async function drive (client: Client, proxyPort: number): Promise<void> {
  while (!client.done && client.failed === undefined) {
    if (control.stop) throw new Error(`upload ${client.plan.index}: stopped before it finished`)
    if (client.anomalies.length >= MAX_ANOMALIES) {
      client.failed = `given up after ${client.anomalies.length} anomalies`
      break
    }
    try {
      await step(client, proxyPort)
      if (client.offset === undefined && !client.done) await sleep(between(client.random, RETRY_DELAY))
    } catch {
      await sleep(between(client.random, RETRY_DELAY))
    }
  }
}

// ---------------------------------------------------------------- reading .metadata

/** The first index at which two buffers differ, -1 when they are equal. */

interface StateEntry {
  name: string
  /** The upload id the file belongs to (for a name reservation: the id of the record it is a link to), `undefined` for a temporary file. */
  uid?: string
  kind: string
  mtimeMs: number
}

/** Every entry of `.metadata`, with the upload it belongs to. */
async function readState (dir: string): Promise<StateEntry[]> {
  const stateDir = join(dir, '.metadata')
  const entries: StateEntry[] = []
  for (const name of await readdir(stateDir)) {
    const path = join(stateDir, name)
    const { mtimeMs } = await stat(path)
    const [stem = '', kind = '', ...rest] = name.split('.')
    if (name.endsWith('.tmp')) {
      entries.push({ name, kind: 'tmp', mtimeMs })
    } else if (kind === 'name' && rest.length === 0) {
      entries.push({ name, uid: (JSON.parse(await readFile(path, 'utf8')) as { uid: string }).uid, kind, mtimeMs })
    } else {
      entries.push({ name, uid: stem, kind: [kind, ...rest.map((part) => part.replace(/-.*/, '-*'))].join('.'), mtimeMs })
    }
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name))
}

function histogram (entries: readonly StateEntry[]): string {
  const counts = new Map<string, number>()
  for (const { kind } of entries) counts.set(kind, (counts.get(kind) ?? 0) + 1)
  return [...counts].map(([kind, count]) => `${kind}: ${count}`).join(', ')
}

// ---------------------------------------------------------------- the test

t.test(`SIGKILL chaos: ${KILLS} kills of the server process during concurrent uploads (CHAOS_SEED=${SEED})`, async (t) => {
  const started = Date.now()
  const delays = killDelays(SEED, KILLS)
  const plans = planUploads(SEED, delays)
  t.comment(`CHAOS_SEED=${SEED} CHAOS_KILLS=${KILLS}; kill delays (ms): ${delays.join(' ')}`)
  for (const plan of plans) {
    t.comment(`upload ${plan.index}: ${plan.size} bytes, chunks of ${plan.chunkSize}, checksum ${plan.checksum}${plan.checksum === 'never' ? '' : ` (${plan.algorithm})`}` +
      `${plan.deferred ? ', deferred length' : ''}${plan.withBody ? `, creation with ${plan.creationBody} bytes` : ''}, starts after ${plan.startAfterKills} kills, ${Math.round(plan.rate / KiB)} KiB/s during the chaos`)
  }

  const dir = t.testdir()
  const startProcess = (): Promise<ServerProcess> => startServerProcess(t, { dir, env: { LOCKER: 'file' } })
  let server = await startProcess()
  const processes = [server]
  const proxy = await roundRobinProxy(t, [server.port])

  const clients: Client[] = plans.map((plan) => ({
    plan,
    name: `chaos-${plan.index}.bin`,
    done: false,
    highest: 0,
    regressions: [],
    anomalies: [],
    mismatches: 0,
    requests: { POST: 0, HEAD: 0, PATCH: 0 },
    broken: 0,
    unansweredPosts: 0,
    nameConflicts: 0,
    random: prng(SEED * 31 + plan.index)
  }))
  t.teardown(() => { control.stop = true })

  // the uploads, each started once its number of kills is reached
  let killsMade = 0
  const startWaiters: Array<{ kills: number, start: () => void }> = []
  const afterKills = (kills: number): Promise<void> => kills <= killsMade ? Promise.resolve() : new Promise((resolve) => { startWaiters.push({ kills, start: resolve }) })
  const drivers = clients.map((client) => afterKills(client.plan.startAfterKills).then(() => drive(client, proxy.port)))
  const outcomes = Promise.allSettled(drivers)

  // the killer
  const standbys: Array<Promise<ServerProcess>> = []
  const kills: Array<{ delay: number, inFlight: InFlight[], downtime: number }> = []
  const killing = async (): Promise<void> => {
    for (let kill = 0; kill < KILLS; kill++) {
      while (standbys.length < Math.min(STANDBYS, KILLS - kill)) {
        const standby = startProcess()
        standby.catch(() => {}) // awaited when its turn comes
        standbys.push(standby)
      }
      await sleep(delays[kill] as number)
      const inFlight = clients.flatMap(({ inFlight }) => inFlight === undefined ? [] : [inFlight])
      await server.kill('SIGKILL')
      const killed = Date.now()
      killsMade++
      for (const waiter of startWaiters.filter(({ kills }) => kills <= killsMade)) waiter.start()
      server = await (standbys.shift() as Promise<ServerProcess>)
      processes.push(server)
      proxy.backends = [server.port]
      kills.push({ delay: delays[kill] as number, inFlight, downtime: Date.now() - killed })
    }
  }
  await killing()
  control.paced = false
  const chaosTime = Date.now() - started
  const progress = clients.map(({ plan, highest, done }) => `${plan.index}: ${done ? 'done' : `${Math.round(highest / plan.size * 100)}%`}`)
  t.comment(`${kills.length} kills in ${chaosTime} ms; uploads when the killing stopped: ${progress.join(', ')}`)

  // the last restart is the clean one: every upload must now finish
  const results = await within('the uploads to finish after the last kill', outcomes, FINISH_TIMEOUT).catch((error: unknown) => {
    control.stop = true
    throw error
  })
  const finishTime = Date.now() - started - chaosTime
  const killed = processes.slice(0, -1).filter(({ child }) => child.signalCode === 'SIGKILL').length

  const midPatch = kills.filter(({ inFlight }) => inFlight.some(({ method }) => method === 'PATCH')).length
  const midCreation = kills.filter(({ inFlight }) => inFlight.some(({ method }) => method === 'POST')).length
  const midCompletion = kills.filter(({ inFlight }) => inFlight.some(({ last }) => last)).length
  const idle = kills.filter(({ inFlight }) => inFlight.length === 0).length
  const downtimes = kills.map(({ downtime }) => downtime).sort((a, b) => a - b)
  kills.forEach(({ delay, inFlight, downtime }, index) => {
    const counts = (['POST', 'HEAD', 'PATCH'] as const).map((method) => `${inFlight.filter((request) => request.method === method).length} ${method}`)
    t.comment(`kill ${index + 1}, ${delay} ms after the restart: in flight ${counts.join(', ')} (${inFlight.filter(({ last }) => last).length} with the last byte); down ${downtime} ms`)
  })
  t.comment(`kills: ${kills.length}, with a PATCH in flight: ${midPatch}, a creation in flight: ${midCreation}, ` +
    `the last chunk in flight: ${midCompletion}, nothing in flight: ${idle}; median downtime ${downtimes[downtimes.length >> 1]} ms`)
  for (const client of clients) {
    const { plan, requests, broken, unansweredPosts, nameConflicts, mismatches } = client
    t.comment(`upload ${plan.index}: ${requests.POST} POST, ${requests.HEAD} HEAD, ${requests.PATCH} PATCH; ${broken} without an answer ` +
      `(${unansweredPosts} creations); ${mismatches} offset mismatches; ${nameConflicts} creations refused for a name a crashed creation holds`)
  }
  t.comment(`chaos ${chaosTime} ms, finish ${finishTime} ms`)

  t.equal(kills.length, KILLS, `${KILLS} kills were made`)
  t.equal(killed, KILLS, `${killed} server processes died of SIGKILL`)
  t.ok(midPatch > 0, `${midPatch} of ${kills.length} kills landed while a PATCH was in flight`)
  results.forEach((result, index) => {
    t.equal(result.status, 'fulfilled', `upload ${index} ran to its end${result.status === 'rejected' ? `: ${String(result.reason)}` : ''}`)
  })
  for (const client of clients) {
    const { plan } = client
    t.equal(client.failed, undefined, `upload ${plan.index} did not fail`)
    t.ok(client.done, `upload ${plan.index} is complete`)
    t.same(client.anomalies, [], `upload ${plan.index}: every answer made sense`)
    t.same(client.regressions, [], `upload ${plan.index}: no offset the server gave went backwards`)
  }
  const nameConflicts = clients.reduce((sum, { nameConflicts }) => sum + nameConflicts, 0)
  // documented: a creation killed before it answered leaves an upload nobody knows, which keeps its name reserved until it expires
  const unanswered = clients.reduce((sum, { unansweredPosts }) => sum + unansweredPosts, 0)
  t.ok(nameConflicts <= unanswered, `${nameConflicts} creations were refused for a name, never more than the ${unanswered} creations that died unanswered`)

  // stop the last process cleanly: nobody touches the directory from here on
  await server.stop()
  for (const standby of standbys) await (await standby).stop()

  // what the lock of an upload that got answers it could not make sense of looks like: the likely culprit
  const known = new Map(clients.filter(({ path }) => path !== undefined).map((client) => [uidOf(client.path as string), client]))
  for (const [uid, client] of known) {
    if (client.anomalies.length === 0) continue
    const lock = join(dir, '.metadata', `${uid}.lock`)
    const owner = await readFile(join(lock, 'owner'), 'utf8').then((text) => `its owner file holds ${JSON.stringify(text)}`, (error: NodeJS.ErrnoException) => `no owner file (${error.code})`)
    const lockState = await stat(lock).then(() => `the lock ${uid}.lock is there, ${owner}`, () => `no lock ${uid}.lock`)
    t.comment(`upload ${client.plan.index} (${uid}), given up after ${client.anomalies.length} anomalies: ${lockState} (CHAOS_SEED=${SEED})`)
  }

  // every completed file byte-exact, and nothing else completed
  for (const client of clients) {
    const stored = await readFile(join(dir, client.name)).catch(() => Buffer.alloc(0))
    const at = firstDifference(stored, client.plan.data)
    t.equal(at, -1, `upload ${client.plan.index} (${client.name}, ${client.plan.size} bytes) is byte-exact` +
      (at === -1 ? '' : `: ${stored.length} bytes stored, first difference at ${at} (CHAOS_SEED=${SEED})`))
  }
  const files = (await readdir(dir)).filter((name) => name !== '.metadata').sort()
  t.same(files, clients.map(({ name }) => name).sort(), 'the completed files are the uploads\', and nothing else')

  // every record whole, and each one an upload: a client's, or one a creation left that never answered
  const before = await readState(dir)
  t.comment(`.metadata before the cleanup: ${histogram(before)}`)
  const records = new Map<string, Record<string, unknown>>()
  for (const { name, uid, kind } of before) {
    if (kind !== 'json') continue
    const text = await readFile(join(dir, '.metadata', name), 'utf8')
    let record: Record<string, unknown> | undefined
    try {
      record = JSON.parse(text) as Record<string, unknown>
    } catch (error) {
      t.fail(`the record ${name} is torn: ${(error as Error).message}: ${JSON.stringify(text.slice(0, 200))} (CHAOS_SEED=${SEED})`)
      continue
    }
    t.equal(record.uid, uid, `the record ${name} is its upload's`)
    records.set(uid as string, record)
  }
  for (const [uid, client] of known) {
    t.match(records.get(uid), { completed: true, fileSize: client.plan.size, fileName: client.name }, `upload ${client.plan.index}: its record says it is complete`)
  }
  const ghosts = [...records.keys()].filter((uid) => !known.has(uid))
  const unansweredPosts = clients.reduce((sum, { unansweredPosts }) => sum + unansweredPosts, 0)
  t.ok(ghosts.length <= unansweredPosts, `${ghosts.length} uploads nobody knows, from ${unansweredPosts} creations that got no answer`)
  for (const uid of ghosts) {
    const record = records.get(uid) as { completed?: unknown, metadata?: { index?: string } }
    const plan = plans[Number(record.metadata?.index)]
    t.equal(record.completed, false, `the upload ${uid} of a creation that got no answer is not complete`)
    const part = await readFile(join(dir, '.metadata', `${uid}.part`)).catch(() => Buffer.alloc(0))
    t.ok(plan !== undefined && part.length < plan.size && firstDifference(part, plan.data.subarray(0, part.length)) === -1,
      `the ${part.length} bytes the upload ${uid} (of upload ${record.metadata?.index}) received are its data's first`)
  }

  // crash leftovers before any cleanup (documented: app.tusCleanup() sweeps them)
  const leftovers = before.filter(({ uid }) => uid !== undefined && !records.has(uid))
  t.comment(`before the cleanup, ${leftovers.length} files belong to no upload: ${histogram(leftovers) || 'none'}`)

  // app.tusCleanup(), run by a server of our own on the directory, then: nothing that belongs to no upload
  const app = Fastify()
  await app.register(tus, { uploadPath: dir, locker: 'file' })
  t.teardown(() => app.close())
  const report = await app.tusCleanup()
  t.equal(report.failed, 0, `the cleanup looked at every upload (it removed ${report.leftovers} leftovers)`)
  const after = await readState(dir)
  t.comment(`.metadata after the cleanup: ${histogram(after)}`)
  const orphans = after.filter(({ uid }) => uid !== undefined && !records.has(uid)).map(({ name }) => name)
  t.same(orphans, [], 'every file in .metadata (but temporary ones) belongs to an upload with a record')
  const oldTemporaries = after.filter(({ kind, mtimeMs }) => kind === 'tmp' && mtimeMs < Date.now() - 60_000).map(({ name }) => name)
  t.same(oldTemporaries, [], 'no temporary file older than a minute is left')
  // a completed upload may keep a name reservation and a lock that a kill left (they belong to it, and are
  // harmless: the name is the completed file's, a dead process's lock is taken over at once), but not its data
  const completed = (uid: string | undefined): boolean => uid !== undefined && known.get(uid)?.done === true
  const ofCompleted = after.filter(({ uid, kind }) => completed(uid) && !['json', 'name', 'lock'].includes(kind))
  t.same(ofCompleted.map(({ name }) => name), [], 'no completed upload has data or concatenation state left in .metadata')
  const locksOfCompleted = after.filter(({ uid, kind }) => completed(uid) && kind === 'lock').length
  const reservationsOfCompleted = after.filter(({ uid, kind }) => completed(uid) && kind === 'name').length
  t.comment(`completed uploads keep ${locksOfCompleted} locks of killed processes and ${reservationsOfCompleted} name reservations`)
  for (const [uid, client] of known) {
    const head = await app.inject({ method: 'HEAD', url: `/uploads/${uid}`, headers: { 'tus-resumable': '1.0.0' } })
    t.match({ status: head.statusCode, offset: head.headers['upload-offset'] }, { status: 200, offset: String(client.plan.size) },
      `upload ${client.plan.index}: a fresh server sees it complete`)
  }
  for (const uid of ghosts) {
    const head = await app.inject({ method: 'HEAD', url: `/uploads/${uid}`, headers: { 'tus-resumable': '1.0.0' } })
    t.equal(head.statusCode, 200, `the upload ${uid} nobody knows can still be resumed (offset ${String(head.headers['upload-offset'])})`)
  }
  // an upload a client gave up on: can a fresh server, after the cleanup, take the rest of it?
  for (const [uid, client] of known) {
    if (client.done) continue
    const head = await app.inject({ method: 'HEAD', url: `/uploads/${uid}`, headers: { 'tus-resumable': '1.0.0' } })
    const offset = Number(head.headers['upload-offset'])
    const headers: Record<string, string> = { 'tus-resumable': '1.0.0', 'content-type': OCTET, 'upload-offset': String(offset) }
    if (client.plan.deferred) headers['upload-length'] = String(client.plan.size)
    const patched = await app.inject({ method: 'PATCH', url: `/uploads/${uid}`, headers, payload: client.plan.data.subarray(offset) })
    t.equal(patched.statusCode, 204, `upload ${client.plan.index}, given up at ${offset} of ${client.plan.size} bytes, is resumed by a fresh server` +
      (patched.statusCode === 204 ? '' : `: PATCH answered ${patched.statusCode} ${patched.body} (CHAOS_SEED=${SEED})`))
  }
  t.comment(`total ${Date.now() - started} ms`)
})
