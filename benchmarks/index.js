// The plugin against a bare Fastify pipe-to-file, same machine, same run.
//   npm run bench                    build, then 5 rounds of one 1 GiB PATCH per target
//   npm run bench -- --quick         2 rounds of 256 MiB
//   node benchmarks/index.js --size 512 --runs 3
// Each target is a server in a child process on 127.0.0.1, storing in a temp
// directory. Rounds run raw then tus, interleaved; the report gives medians.
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, open, stat, unlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { send } from './lib/client.js'
import { clockTicksPerSecond, memoryBytes, processTimes } from './lib/proc.js'
import { killAllNow, startServer, stopServer } from './lib/server.js'
import { GiB, MiB, fixed, median, table } from './lib/stats.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(HERE)
const RESULTS = join(HERE, 'results', 'latest.json')

const CHUNK_BYTES = MiB
const PAUSE_MS = 200
const SMALL_REQUEST_TIMEOUT_MS = 10_000
const SLOWEST_PLAUSIBLE_BYTES_PER_SECOND = 10e6 // a PATCH slower than this is a hang: give up
const OFFSET_OCTET_STREAM = 'application/offset+octet-stream'
const TUS = { 'tus-resumable': '1.0.0' }

const USAGE = `usage: node benchmarks/index.js [--quick] [--size <MiB>] [--runs <n>]
  --quick       a short run: 256 MiB, 2 rounds (an explicit --size or --runs wins)
  --size <MiB>  bytes of the one PATCH of each run, in MiB (default 1024)
  --runs <n>    rounds, each one raw run then one tus run (default 5)`

const TARGETS = [
  { name: 'raw', script: join(HERE, 'servers', 'raw.js'), upload: uploadRaw },
  { name: 'tus', script: join(HERE, 'servers', 'tus.js'), upload: uploadTus }
]

let tempDir

/** A bad command line: said without a stack trace. */
class UsageError extends Error {}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAllNow()
    if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true })
    console.error(`\n${signal}: benchmark stopped, servers killed, temp directory removed`)
    process.exit(128 + os.constants.signals[signal])
  })
}

try {
  await main()
} catch (error) {
  console.error(error instanceof UsageError ? `${error.message}\n${USAGE}` : `\nbenchmark FAILED: ${error.stack ?? error}`)
  process.exitCode = 1
}

async function main () {
  const config = parseOptions()
  if (process.platform !== 'linux') throw new Error('this benchmark reads server CPU and memory from /proc: Linux only')
  const build = checkBuild()
  const clock = clockTicksPerSecond()
  const machine = describeMachine(clock)
  const chunk = randomFillSync(Buffer.alloc(CHUNK_BYTES))

  console.log(`machine: ${describeLine(machine)}`)
  console.log(`workload: one PATCH of ${fixed(config.bytes / MiB, 0)} MiB per run (node:http client, ${CHUNK_BYTES / MiB} MiB writes), ` +
    `${plural(config.runs, 'round')} interleaved raw/tus${config.quick ? ' (quick)' : ''}, ` +
    'after one unmeasured warm-up upload of that size to each')
  if (build.stale) console.warn('warning: lib/ is newer than dist/: run `npm run build` (npm run bench does) to measure the current code')

  const targets = TARGETS.map((target) => ({ ...target, runs: [] }))
  tempDir = await mkdtemp(join(os.tmpdir(), 'fastify-tus-bench-'))
  console.log(`storage: ${tempDir}\n`)
  try {
    for (const target of targets) {
      target.dir = join(tempDir, target.name)
      await mkdir(target.dir)
      target.server = await startServer(target.script, target.dir)
      target.idleRssBytes = memoryBytes(target.server.pid, 'VmRSS')
    }
    // Unmeasured, full size: warms the JIT, and the memory the page cache takes (in a VM, the first touch of
    // guest memory, or of memory handed back to the host, is much slower and would make round 1 an outlier).
    for (const target of targets) await run(target, 'warmup', config.bytes, chunk, clock)
    for (let round = 1; round <= config.runs; round++) {
      for (const target of targets) {
        await sleep(PAUSE_MS)
        const result = await run(target, `r${round}`, config.bytes, chunk, clock)
        target.runs.push({ round, ...result })
        console.log(`round ${round}/${config.runs}  ${target.name}  ${fixed(result.seconds, 2).padStart(6)} s  ` +
          `${fixed(result.mbPerSecond, 1).padStart(7)} MB/s  server ${fixed(result.serverCpuSecondsPerGiB, 3)} CPU-s/GiB ` +
          `(user ${fixed(result.serverUserSecondsPerGiB, 2)}, sys ${fixed(result.serverSystemSecondsPerGiB, 2)}, ` +
          `${fixed(result.serverMinorFaultsPerGiB / 1000, 0)}k faults/GiB)  ` +
          `client ${fixed(result.clientCpuSecondsPerGiB, 3)} CPU-s/GiB`)
      }
    }
    for (const target of targets) target.peakRssBytes = memoryBytes(target.server.pid, 'VmHWM')
  } finally {
    await Promise.all(targets.filter((target) => target.server !== undefined).map((target) => stopServer(target.server.child)))
    rmTemp()
  }

  const results = summarize(config, machine, build, targets)
  console.log(`\n${report(results)}`)
  await mkdir(dirname(RESULTS), { recursive: true })
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`)
  console.log(`\nwritten: ${relative(process.cwd(), RESULTS)}`)
}

function parseOptions () {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        size: { type: 'string' },
        runs: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (error) {
    throw new UsageError(error.message)
  }
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const sizeMiB = values.size === undefined ? (values.quick ? 256 : 1024) : Number(values.size)
  const runs = values.runs === undefined ? (values.quick ? 2 : 5) : Number(values.runs)
  const bytes = Math.round(sizeMiB * MiB)
  if (!Number.isFinite(sizeMiB) || bytes < 1 || !Number.isSafeInteger(bytes)) throw new UsageError(`--size must be a positive number of MiB, not ${values.size}`)
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs must be a positive integer, not ${values.runs}`)
  return { quick: values.quick, bytes, runs }
}

/** dist/ must exist; it should not be older than lib/. */
function checkBuild () {
  const entry = join(ROOT, 'dist', 'index.js')
  if (!existsSync(entry)) throw new Error('dist/index.js is missing: run `npm run build` first (npm run bench does)')
  const builtAt = statSync(entry).mtimeMs
  const newest = (dir) => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? newest(path) : statSync(path).mtimeMs
  }))
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return null
    }
  }
  const changes = git('status', '--porcelain', '--', 'lib')
  return {
    stale: newest(join(ROOT, 'lib')) > builtAt,
    builtAt: new Date(builtAt).toISOString(),
    commit: git('rev-parse', '--short', 'HEAD'),
    libUncommittedChanges: changes === null ? null : changes.split('\n').filter(Boolean).map((line) => line.slice(3))
  }
}

function describeMachine (clock) {
  const cpus = os.cpus()
  const model = cpus[0]?.model.trim() ?? 'unknown CPU'
  return {
    cpuModel: model,
    cores: cpus.length,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    totalMemoryBytes: os.totalmem(),
    clockTicksPerSecond: clock.ticks,
    clockTicksSource: clock.source
  }
}

/**
 * One upload of `bytes` to `target`, measured around its PATCH only: wall time
 * on the client, CPU time of the server process from /proc, CPU time of this
 * process. The file on disk must then hold every byte; it is removed after.
 */
async function run (target, label, bytes, chunk, clock) {
  const fileName = `${target.name}-${label}.bin`
  const measure = async (patch) => {
    const serverBefore = processTimes(target.server.pid)
    const clientBefore = process.cpuUsage()
    const response = await patch()
    const serverAfter = processTimes(target.server.pid)
    const client = process.cpuUsage(clientBefore)
    return {
      response,
      serverUserSeconds: (serverAfter.user - serverBefore.user) / clock.ticks,
      serverSystemSeconds: (serverAfter.system - serverBefore.system) / clock.ticks,
      serverMinorFaults: serverAfter.minorFaults - serverBefore.minorFaults,
      clientCpuSeconds: (client.user + client.system) / 1e6
    }
  }
  const patchTimeoutMs = 30_000 + Math.ceil(bytes / SLOWEST_PLAUSIBLE_BYTES_PER_SECOND * 1000)
  let filePath, measured
  try {
    ({ filePath, measured } = await target.upload(target, fileName, bytes, chunk, patchTimeoutMs, measure))
    await verifyFile(filePath, bytes, chunk)
  } catch (error) {
    const { exitCode, signalCode } = target.server.child
    const died = exitCode === null && signalCode === null ? '' : ` (the ${target.name} server has exited: code ${exitCode}, signal ${signalCode})`
    throw new Error(`${target.name} ${label}: ${error.message}${died}`, { cause: error })
  }
  await unlink(filePath)
  const seconds = measured.response.seconds
  const serverCpuSeconds = measured.serverUserSeconds + measured.serverSystemSeconds
  return {
    bytes,
    seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    serverCpuSeconds,
    serverUserSeconds: measured.serverUserSeconds,
    serverSystemSeconds: measured.serverSystemSeconds,
    serverCpuSecondsPerGiB: serverCpuSeconds / (bytes / GiB),
    serverUserSecondsPerGiB: measured.serverUserSeconds / (bytes / GiB),
    serverSystemSecondsPerGiB: measured.serverSystemSeconds / (bytes / GiB),
    serverMinorFaultsPerGiB: measured.serverMinorFaults / (bytes / GiB),
    clientCpuSeconds: measured.clientCpuSeconds,
    clientCpuSecondsPerGiB: measured.clientCpuSeconds / (bytes / GiB)
  }
}

/** raw: one PATCH of the whole body, answered 204 once it is in the file. */
async function uploadRaw ({ server, dir }, fileName, bytes, chunk, timeoutMs, measure) {
  const path = `/raw/${fileName}`
  const measured = await measure(() => send({
    port: server.port, method: 'PATCH', path, headers: { 'content-type': OFFSET_OCTET_STREAM }, size: bytes, chunk, timeoutMs
  }))
  expectStatus(measured.response, 204, `raw PATCH ${path}`)
  return { filePath: join(dir, fileName), measured }
}

/** tus: a POST creates the upload with its length and name, then one PATCH sends all of it. */
async function uploadTus ({ server, dir }, fileName, bytes, chunk, timeoutMs, measure) {
  const created = await send({
    port: server.port,
    method: 'POST',
    path: '/uploads',
    headers: { ...TUS, 'upload-length': String(bytes), 'upload-metadata': `filename ${Buffer.from(fileName).toString('base64')}` },
    timeoutMs: SMALL_REQUEST_TIMEOUT_MS
  })
  expectStatus(created, 201, 'tus POST /uploads')
  if (typeof created.headers.location !== 'string') throw new Error('tus POST /uploads: 201 without a Location')
  const path = new URL(created.headers.location, `http://127.0.0.1:${server.port}`).pathname
  const uid = path.slice(path.lastIndexOf('/') + 1)
  const measured = await measure(() => send({
    port: server.port, method: 'PATCH', path, headers: { ...TUS, 'upload-offset': '0', 'content-type': OFFSET_OCTET_STREAM }, size: bytes, chunk, timeoutMs
  }))
  expectStatus(measured.response, 204, `tus PATCH ${path}`)
  const offset = measured.response.headers['upload-offset']
  if (offset !== String(bytes)) throw new Error(`tus PATCH ${path}: Upload-Offset ${offset} after a body of ${bytes} bytes`)
  const partial = join(dir, '.metadata', `${uid}.part`)
  if (existsSync(partial)) throw new Error(`tus upload ${uid}: complete, yet its partial data ${partial} is still there`)
  return { filePath: join(dir, fileName), measured }
}

function expectStatus (response, status, what) {
  if (response.status !== status) throw new Error(`${what}: ${response.status} instead of ${status}: ${response.body}`)
}

/** The file holds exactly `bytes` bytes, and its start, middle and end are the bytes sent there. */
async function verifyFile (filePath, bytes, chunk) {
  const size = await stat(filePath).then((stats) => stats.size, (error) => {
    throw new Error(`${filePath}: not on disk after a successful upload (${error.code})`)
  })
  if (size !== bytes) throw new Error(`${filePath}: ${size} bytes on disk, ${bytes} sent: ${bytes - size} bytes LOST`)
  const handle = await open(filePath, 'r')
  try {
    const length = Math.min(chunk.length, bytes)
    for (const start of [0, Math.floor((bytes - length) / 2) + 7, bytes - length]) {
      const actual = Buffer.alloc(Math.min(length, bytes - start))
      await handle.read(actual, 0, actual.length, start)
      if (!actual.equals(sentBytes(chunk, start, actual.length))) {
        throw new Error(`${filePath}: the bytes at offset ${start} are not the ones sent: CORRUPT`)
      }
    }
  } finally {
    await handle.close()
  }
}

/** The bytes the client sent at `start`: the chunk, repeated. */
function sentBytes (chunk, start, length) {
  const bytes = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const from = (start + filled) % chunk.length
    filled += chunk.copy(bytes, filled, from, Math.min(chunk.length, from + length - filled))
  }
  return bytes
}

function rmTemp () {
  if (tempDir === undefined) return
  const dir = tempDir
  tempDir = undefined
  rmSync(dir, { recursive: true, force: true })
}

function summarize (config, machine, build, targets) {
  const summary = {}
  for (const { name, runs, idleRssBytes, peakRssBytes } of targets) {
    const mbPerSecond = runs.map((run) => run.mbPerSecond)
    summary[name] = {
      median: {
        seconds: median(runs.map((run) => run.seconds)),
        mbPerSecond: median(mbPerSecond),
        serverCpuSecondsPerGiB: median(runs.map((run) => run.serverCpuSecondsPerGiB)),
        serverUserSecondsPerGiB: median(runs.map((run) => run.serverUserSecondsPerGiB)),
        serverSystemSecondsPerGiB: median(runs.map((run) => run.serverSystemSecondsPerGiB)),
        serverMinorFaultsPerGiB: median(runs.map((run) => run.serverMinorFaultsPerGiB)),
        clientCpuSecondsPerGiB: median(runs.map((run) => run.clientCpuSecondsPerGiB))
      },
      mbPerSecondRange: [Math.min(...mbPerSecond), Math.max(...mbPerSecond)],
      idleRssBytes,
      peakRssBytes,
      runs
    }
  }
  const { raw, tus } = summary
  const paired = (key) => median(tus.runs.map((run, index) => run[key] / raw.runs[index][key]))
  return {
    date: new Date().toISOString(),
    machine,
    build,
    config: {
      quick: config.quick,
      bytes: config.bytes,
      rounds: config.runs,
      chunkBytes: CHUNK_BYTES,
      warmupBytes: config.bytes,
      order: TARGETS.map((target) => target.name),
      mbIs: '10^6 bytes'
    },
    targets: summary,
    ratios: {
      tusOverRaw: {
        mbPerSecond: tus.median.mbPerSecond / raw.median.mbPerSecond,
        serverCpuSecondsPerGiB: tus.median.serverCpuSecondsPerGiB / raw.median.serverCpuSecondsPerGiB,
        peakRss: tus.peakRssBytes / raw.peakRssBytes
      },
      medianOfRoundRatios: {
        mbPerSecond: paired('mbPerSecond'),
        serverCpuSecondsPerGiB: paired('serverCpuSecondsPerGiB')
      }
    }
  }
}

function report (results) {
  const { targets, ratios, config, machine } = results
  const rows = [['target', 'MB/s', 'min-max MB/s', 'server CPU-s/GiB', '(user', 'sys)', 'client CPU-s/GiB', 'idle RSS MiB', 'peak RSS MiB']]
  for (const [name, target] of Object.entries(targets)) {
    rows.push([
      name,
      fixed(target.median.mbPerSecond, 1),
      `${fixed(target.mbPerSecondRange[0], 0)}-${fixed(target.mbPerSecondRange[1], 0)}`,
      fixed(target.median.serverCpuSecondsPerGiB, 3),
      fixed(target.median.serverUserSecondsPerGiB, 2),
      fixed(target.median.serverSystemSecondsPerGiB, 2),
      fixed(target.median.clientCpuSecondsPerGiB, 3),
      fixed(target.idleRssBytes / MiB, 1),
      fixed(target.peakRssBytes / MiB, 1)
    ])
  }
  const ratio = (value) => `${fixed(value, 2)}x`
  rows.push(['tus/raw', ratio(ratios.tusOverRaw.mbPerSecond), '', ratio(ratios.tusOverRaw.serverCpuSecondsPerGiB), '', '', '', '', ratio(ratios.tusOverRaw.peakRss)])
  return [
    `medians of ${plural(config.rounds, 'round')}, one PATCH of ${fixed(config.bytes / MiB, 0)} MiB each (MB = 10^6 bytes; CPU from /proc at ${machine.clockTicksPerSecond} ticks/s)`,
    table(rows),
    `per-round tus/raw, median: ${ratio(ratios.medianOfRoundRatios.mbPerSecond)} MB/s, ${ratio(ratios.medianOfRoundRatios.serverCpuSecondsPerGiB)} server CPU`,
    `machine: ${describeLine(machine)}`
  ].join('\n')
}

function plural (count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}

function describeLine (machine) {
  return `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node} ` +
    `(${machine.platform} ${machine.arch}, kernel ${machine.kernel}, ${fixed(machine.totalMemoryBytes / GiB, 1)} GiB RAM)`
}
