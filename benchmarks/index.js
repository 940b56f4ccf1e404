// The plugin against the physical limit and against @tus/server, same machine, same run.
//   npm run bench                          build, then every workload, full size (about 9 minutes here)
//   npm run bench -- --quick               the same, small and short (under 2 minutes)
//   npm run bench -- --only 1,4            some workloads
//   node benchmarks/index.js --help        every option
// Each target is a server in a process of its own on 127.0.0.1, storing in a
// temporary directory: raw (minimal Fastify + fs.writev, the physical limit
// for a Fastify app), raw-discard (the same, dropping the body: the
// HTTP-parsing limit), raw-loaded (raw with the plugin loaded beside it: the
// same hot path, the plugin's heap), raw-durable (raw whose POST, HEAD and
// PATCH do a crash-safe server's least file work), node-http (raw without
// Fastify, for reference), tus-server (@tus/server + @tus/file-store in
// Fastify) and fastify-tus (this plugin, from a snapshot of dist/ taken at the
// start). Rounds are interleaved (A B C A B C) so that drift cancels; the report
// gives medians and ratios, the server's CPU seconds per GiB (from /proc) beside
// every throughput, and is written to benchmarks/results/latest.json (and its
// headline to latest.md). The bytes of every upload are checked on disk (raw-
// discard's are counted); workload 4 counts the uploads its POSTs made and
// checks the offsets its warm-up HEADs get.
import { randomFillSync } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeBuild, describeMachine, machineLine, buildLine, snapshotDist } from './lib/build.js'
import { DEFAULTS, USAGE, UsageError, parseOptions } from './lib/config.js'
import { foreignCpu, withServers } from './lib/harness.js'
import { clockTicksPerSecond } from './lib/proc.js'
import { headlineMarkdown, report } from './lib/report.js'
import { killAllNow } from './lib/server.js'
import { MiB } from './lib/stats.js'
import { targets as defineTargets } from './lib/targets.js'
import * as single from './workloads/single.js'
import * as chunked from './workloads/chunked.js'
import * as concurrent from './workloads/concurrent.js'
import * as requests from './workloads/requests.js'
import * as memory from './workloads/memory.js'
import * as takeover from './workloads/takeover.js'
import * as extensions from './workloads/extensions.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(HERE)
const RESULTS = join(HERE, 'results', 'latest.json')
const HEADLINE = join(HERE, 'results', 'latest.md')
// inside the repository, so that the snapshot's imports resolve from its node_modules
const SNAPSHOT = join(HERE, 'results', `dist-snapshot-${process.pid}`)
const WORKLOADS = [single, chunked, concurrent, requests, memory, takeover, extensions]
const CHUNK_BYTES = MiB
/** Past this share of the machine's CPU going elsewhere during a workload, the figures are flagged noisy. */
const FOREIGN_WARNING = 0.1
/** The whole run is bounded: past this, servers are killed and the run fails. */
const TIME_LIMIT_MS = { quick: 6 * 60_000, full: 60 * 60_000 }

let tempDir

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // `on`, not `once`: a second signal (sent to the whole process group, say) must not kill this process mid-cleanup
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    killAllNow()
    cleanUp()
    console.error(`\n${signal}: benchmark stopped, servers killed, temporary files removed`)
    process.exit(128 + os.constants.signals[signal])
  })
}
process.once('exit', () => {
  killAllNow()
  cleanUp()
})

try {
  await main()
} catch (error) {
  console.error(error instanceof UsageError ? `${error.message}\n${USAGE}` : `\nbenchmark FAILED: ${error.stack ?? error}`)
  process.exitCode = 1
}

async function main () {
  const config = parseOptions()
  if (config.help) return console.log(USAGE)
  if (process.platform !== 'linux') throw new Error('this benchmark reads server CPU and memory from /proc: Linux only')
  const started = Date.now()
  const build = describeBuild(ROOT)
  const clock = clockTicksPerSecond()
  const machine = describeMachine(clock)
  console.log(`machine: ${machineLine(machine)}`)
  console.log(`measured: ${buildLine(build)}`)
  if (build.stale) console.warn('warning: lib/ is newer than dist/: run `npm run build` (npm run bench does) to measure the current code')
  if (machine.loadAverageAtStart[0] > 0.5) console.warn(`warning: load average ${machine.loadAverageAtStart[0].toFixed(2)}: something else is running, figures will be noisy`)

  const limit = config.quick ? TIME_LIMIT_MS.quick : TIME_LIMIT_MS.full
  const watchdog = setTimeout(() => {
    console.error(`\nbenchmark FAILED: still running after ${limit / 60_000} minutes; servers killed`)
    process.exit(1) // the exit handler kills the servers and removes the temporary files
  }, limit)
  watchdog.unref()

  const targets = defineTargets({ dist: snapshotDist(ROOT, SNAPSHOT) })
  const chunk = randomFillSync(Buffer.alloc(CHUNK_BYTES))
  tempDir = await mkdtemp(join(config.dir ?? os.tmpdir(), 'fastify-tus-bench-'))
  console.log(`storage: ${tempDir}`)
  const results = {
    date: new Date(started).toISOString(),
    machine,
    build,
    config: { ...config, chunkBytes: CHUNK_BYTES, mbIs: '10^6 bytes', targets: Object.fromEntries(Object.values(targets).map((target) => [target.name, target.description])) },
    workloads: {}
  }
  const failed = []
  try {
    for (const workload of WORKLOADS.filter((workload) => config.only.includes(workload.id))) {
      console.log(`\n== workload ${workload.id}: ${workload.title}`)
      let description
      const log = (line) => {
        description ??= line
        console.log(`  ${line}`)
      }
      const workloadStarted = Date.now()
      const foreign = foreignCpu(clock, machine.cores)
      const settings = serverSettings(workload, config)
      try {
        const result = await workload.run({
          config,
          targets,
          withServers: (list, work, options) => withServers(list, join(tempDir, `workload-${workload.id}`), work, { ...options, settings }),
          chunk,
          clock,
          log
        })
        const elsewhere = foreign()
        results.workloads[workload.id] = { title: workload.title, description, serverSettings: settings, seconds: (Date.now() - workloadStarted) / 1000, foreignCpu: elsewhere, ...result }
        if (elsewhere.shareOfMachine > FOREIGN_WARNING) {
          console.warn(`  warning: ${(elsewhere.shareOfMachine * 100).toFixed(0)}% of the machine's CPU went to other processes and kernel threads during this workload: figures are noisy`)
        }
      } catch (error) {
        failed.push(workload.id)
        results.workloads[workload.id] = { title: workload.title, description, error: error.message }
        console.error(`  workload ${workload.id} FAILED: ${error.stack ?? error}`)
      }
    }
  } finally {
    clearTimeout(watchdog)
    cleanUp()
  }
  const after = describeBuild(ROOT)
  if (after.distSha256 !== build.distSha256) {
    results.build.distChangedDuringRun = true
    console.warn('\nnote: dist/ was rebuilt during the run; every server loaded the snapshot taken at the start, so the figures are of one build')
  }
  results.seconds = (Date.now() - started) / 1000

  console.log(`\n${report(results)}`)
  await mkdir(dirname(RESULTS), { recursive: true })
  await writeFile(RESULTS, `${JSON.stringify(results, null, 2)}\n`)
  await writeFile(HEADLINE, `${headlineMarkdown(results)}\n`)
  console.log(`\nwritten: ${relative(process.cwd(), RESULTS)}, and the headline for the README in ${relative(process.cwd(), HEADLINE)} (${results.seconds.toFixed(0)} s in all)`)
  if (failed.length > 0) {
    console.error(`\nbenchmark FAILED: workload${failed.length > 1 ? 's' : ''} ${failed.join(', ')} (see above)`)
    process.exitCode = 1
  }
}

/** What a workload's servers run with: the tuning (none with --defaults; never in workload 5), then --node-flags. */
function serverSettings (workload, config) {
  const base = workload.underDefaults === true ? DEFAULTS : config.tuning
  return { nodeFlags: [...base.nodeFlags, ...config.nodeFlags], environment: base.environment }
}

/** Removes the temporary upload directories and the dist/ snapshot; safe to call twice. */
function cleanUp () {
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
  rmSync(SNAPSHOT, { recursive: true, force: true })
}
