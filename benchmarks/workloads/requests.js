// Workload 4: creation POSTs per second and HEADs per second (autocannon, 10
// keep-alive connections). For raw, a POST creates an empty file and a HEAD
// stats one. The HEADs go to uploads that are half sent, one per connection
// (a resuming client asks about its own upload). POSTs carry no metadata, so
// that no two of them name the same file. The uploads made are kept until the
// workload ends: on ext4 without a journal (this VM's), a file created within a
// minute or more of many deletions costs ten times more, as the allocator
// skips the inodes deleted recently (recently_deleted() in fs/ext4/ialloc.c).
// For the same reason they are removed only at the end of the whole run, so
// that the workloads after this one do not pay for their removal.
import { setTimeout as sleep } from 'node:timers/promises'
import { measure, withServerState } from '../lib/harness.js'
import { expectClean, load } from '../lib/load.js'
import { MiB, fixed, median, plural } from '../lib/stats.js'
import { range } from './common.js'

export const id = 4
export const title = 'creation POSTs/s and HEADs/s'

const NAMES = ['raw', 'raw-durable', 'node-http', 'tus-server', 'fastify-tus']
const HEAD_UPLOAD_BYTES = 2 * MiB
const HEAD_UPLOAD_SENT = 1 * MiB
const PAUSE_MS = 300

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { connections, seconds, warmupSeconds, rounds } = config.requests
  log(`autocannon, ${connections} connections, ${seconds} s per run, ${plural(rounds, 'round')} after a ${warmupSeconds} s warm-up ` +
    '(not raw-discard nor raw-loaded: their POST and HEAD are those of raw)')
  return withServers(NAMES.map((name) => targets[name]), async (servers) => {
    // the uploads the HEADs ask about: half sent
    for (const server of servers) {
      const { target } = server
      server.headUploads = []
      for (let index = 0; index < connections; index++) {
        const upload = await target.create(server, { length: HEAD_UPLOAD_BYTES })
        await target.patch(server, upload, { offset: 0, size: HEAD_UPLOAD_SENT, chunk })
        server.headUploads.push(upload)
      }
    }
    const figures = Object.fromEntries(servers.map((server) => [server.target.name, { post: [], head: [] }]))
    const post = (server, duration, label) => attempt(server, label, () => posts(server, { connections, seconds: duration, clock }))
    const head = (server, duration, label, check) => attempt(server, label, () => heads(server, { connections, seconds: duration, clock, check }))
    for (const server of servers) {
      await post(server, warmupSeconds, 'POST warm-up')
      await head(server, warmupSeconds, 'HEAD warm-up', true) // every answer's Upload-Offset checked
    }
    for (let round = 1; round <= rounds; round++) {
      for (const server of servers) {
        const result = await post(server, seconds, `POST r${round}`)
        figures[server.target.name].post.push({ round, ...result })
        log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  POST ${describe(result)}`)
      }
      for (const server of servers) {
        const result = await head(server, seconds, `HEAD r${round}`, false)
        figures[server.target.name].head.push({ round, ...result })
        log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  HEAD ${describe(result)}`)
      }
    }
    const summary = {}
    for (const [name, { post, head }] of Object.entries(figures)) summary[name] = { post: summarize(post), head: summarize(head) }
    return { connections, secondsPerRun: seconds, rounds, targets: summary }
  }, { keep: true })
}

async function attempt (server, label, work) {
  await sleep(PAUSE_MS)
  try {
    return await work()
  } catch (error) {
    throw withServerState(server, error, label)
  }
}

/** POSTs for `seconds`; every upload made must be on disk (kept until the run ends, see above). */
async function posts (server, { connections, seconds, clock }) {
  const { target } = server
  const before = await target.countUploads(server.dir)
  const measured = await measure(server, clock, () => load({
    port: server.port, method: 'POST', paths: [target.creationPath], headers: target.creationHeaders, connections, seconds
  }))
  const result = measured.value
  expectClean(`${target.name} POST`, result)
  // requests still in flight when the run ends are not counted, though their uploads may exist: at most one per connection
  const made = await target.countUploads(server.dir) - before
  if (made < result.ok) throw new Error(`${target.name} POST: ${result.ok} uploads created (201), ${made} on disk: ${result.ok - made} LOST`)
  if (made > result.ok + connections) throw new Error(`${target.name} POST: ${result.ok} uploads created (201), yet ${made} on disk`)
  return figuresOf(result, measured)
}

/** HEADs for `seconds`, each connection on an upload of its own. */
async function heads (server, { connections, seconds, clock, check }) {
  const { target } = server
  const measured = await measure(server, clock, () => load({
    port: server.port,
    method: 'HEAD',
    paths: server.headUploads.map((upload) => upload.path),
    headers: target.headHeaders,
    connections,
    seconds,
    check: check ? checkOffset : undefined
  }))
  expectClean(`${target.name} HEAD`, measured.value)
  return figuresOf(measured.value, measured)
}

function checkOffset (status, headers) {
  if (status !== 200) return `HEAD answered ${status}`
  if (headers['upload-offset'] !== String(HEAD_UPLOAD_SENT)) return `HEAD said Upload-Offset ${headers['upload-offset']}, not ${HEAD_UPLOAD_SENT}`
}

function figuresOf (result, measured) {
  return {
    requestsPerSecond: result.requestsPerSecond,
    requests: result.ok,
    seconds: result.seconds,
    latencyP99Ms: result.latencyP99Ms,
    serverCpuMicrosecondsPerRequest: measured.serverCpuSeconds / result.ok * 1e6,
    clientCpuMicrosecondsPerRequest: measured.clientCpuSeconds / result.ok * 1e6
  }
}

function summarize (runs) {
  return {
    median: {
      requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
      serverCpuMicrosecondsPerRequest: median(runs.map((run) => run.serverCpuMicrosecondsPerRequest)),
      latencyP99Ms: median(runs.map((run) => run.latencyP99Ms))
    },
    requestsPerSecondRange: range(runs.map((run) => run.requestsPerSecond)),
    runs
  }
}

function describe (result) {
  return `${fixed(result.requestsPerSecond, 0).padStart(6)}/s  (${result.requests} in ${fixed(result.seconds, 2)} s, p99 ${result.latencyP99Ms} ms)  ` +
    `server ${fixed(result.serverCpuMicrosecondsPerRequest, 0)} CPU-µs/request, client ${fixed(result.clientCpuMicrosecondsPerRequest, 0)}`
}
