// The command line, and the sizes and rounds of each workload in full and quick mode.
import { parseArgs } from 'node:util'
import { MiB } from './stats.js'

/**
 * What the servers of a workload run with, unless --defaults (README, "Tuning"). Under
 * node's and glibc's defaults a server process falls by chance into one of two
 * steady states of the collector and of the allocator while bodies stream, and
 * so does every target, each in its own way: the ratios would compare draws,
 * not code (README, Performance). Workload 5 measures memory, which the tuning
 * trades for CPU: it always runs under the defaults.
 */
export const TUNING = Object.freeze({
  nodeFlags: ['--initial-old-space-size=64'],
  environment: { MALLOC_TRIM_THRESHOLD_: '67108864' }
})
export const DEFAULTS = Object.freeze({ nodeFlags: [], environment: {} })

export const USAGE = `usage: node benchmarks/index.js [--quick] [--only <list>] [--rounds <n>] [--size <MiB>] [--dir <path>] [--defaults] [--node-flags <flags>]
  --quick         a short run (under 2 minutes): smaller sizes, fewer rounds
  --only <list>   the workloads to run, by number, e.g. --only 1,4 (default: all)
                    1  one large upload in a single PATCH          5  peak RSS: 1 GiB and 4 GiB uploads
                    2  256 MiB in 4 MiB PATCHes                    6  takeover of a stalled PATCH
                    3  32 concurrent 32 MiB uploads                7  checksum and concatenation costs
                    4  creation POSTs/s and HEADs/s (autocannon)
  --rounds <n>    rounds of every workload that has rounds (overrides the mode's)
  --size <MiB>    the size of workload 1's upload (default 1024, quick 256)
  --dir <path>    where the temporary upload directories go (default: the OS temporary directory)
  --defaults      every server under node's and glibc's defaults (by default, the servers of every
                  workload but 5 run with the README's tuning: ${describeSettings(TUNING)})
  --node-flags <flags>  more node options for every server process, e.g. --node-flags=--max-semi-space-size=32
                  (default: none; the report's mode line names them)
  -h, --help      this text`

const WORKLOADS = [1, 2, 3, 4, 5, 6, 7]

/** Settings as a command line would spell them. */
export function describeSettings ({ nodeFlags, environment }) {
  return [...Object.entries(environment).map(([name, value]) => `${name}=${value}`), ...nodeFlags].join(' ')
}

/** A bad command line: said without a stack trace. */
export class UsageError extends Error {}

const FULL = {
  single: { bytes: 1024 * MiB, rounds: 5 },
  chunked: { bytes: 256 * MiB, patchBytes: 4 * MiB, rounds: 5 },
  concurrent: { uploads: 32, bytes: 32 * MiB, patchBytes: 4 * MiB, rounds: 5 },
  requests: { connections: 10, seconds: 5, warmupSeconds: 1, rounds: 3 },
  memory: { small: 1024 * MiB, large: 4096 * MiB },
  takeover: { stalledBytes: 8 * MiB, restBytes: 1 * MiB, stallMs: 500, rounds: 5 },
  extensions: { bytes: 256 * MiB, patchBytes: 4 * MiB, partials: 4, rounds: 5, hashBytes: 1024 * MiB }
}

const QUICK = {
  single: { bytes: 256 * MiB, rounds: 2 },
  chunked: { bytes: 64 * MiB, patchBytes: 4 * MiB, rounds: 2 },
  concurrent: { uploads: 32, bytes: 8 * MiB, patchBytes: 4 * MiB, rounds: 1 },
  requests: { connections: 10, seconds: 1, warmupSeconds: 1, rounds: 1 },
  memory: { small: 64 * MiB, large: 256 * MiB },
  takeover: { stalledBytes: 8 * MiB, restBytes: 1 * MiB, stallMs: 300, rounds: 2 },
  extensions: { bytes: 64 * MiB, patchBytes: 4 * MiB, partials: 4, rounds: 2, hashBytes: 256 * MiB }
}

export function parseOptions (argv = process.argv.slice(2)) {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        rounds: { type: 'string' },
        size: { type: 'string' },
        dir: { type: 'string' },
        defaults: { type: 'boolean', default: false },
        'node-flags': { type: 'string', default: '' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (error) {
    throw new UsageError(error.message)
  }
  if (values.help) return { help: true }
  const mode = structuredClone(values.quick ? QUICK : FULL)
  const only = values.only === undefined ? WORKLOADS : [...new Set(values.only.split(',').map((item) => Number(item.trim())))]
  if (only.length === 0 || !only.every((id) => WORKLOADS.includes(id))) {
    throw new UsageError(`--only takes workload numbers from ${WORKLOADS.join(',')}, not ${values.only}`)
  }
  if (values.rounds !== undefined) {
    const rounds = Number(values.rounds)
    if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`--rounds must be a positive integer, not ${values.rounds}`)
    for (const workload of Object.values(mode)) if ('rounds' in workload) workload.rounds = rounds
  }
  if (values.size !== undefined) {
    const size = Number(values.size)
    if (!Number.isInteger(size) || size < 1) throw new UsageError(`--size must be a positive integer number of MiB, not ${values.size}`)
    mode.single.bytes = size * MiB
  }
  const nodeFlags = values['node-flags'].split(/\s+/).filter((flag) => flag !== '')
  const notFlag = nodeFlags.find((flag) => !flag.startsWith('--'))
  if (notFlag !== undefined) throw new UsageError(`--node-flags takes node options (each starting with --), not ${notFlag}`)
  // glibc's allocator settings reach the servers through the environment they inherit: the report names them
  const mallocEnvironment = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('MALLOC_')))
  const tuning = values.defaults ? DEFAULTS : TUNING
  return { help: false, quick: values.quick, only: only.sort((a, b) => a - b), dir: values.dir, tuning, nodeFlags, mallocEnvironment, ...mode }
}
