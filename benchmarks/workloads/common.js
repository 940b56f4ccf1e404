// Shared by the workloads: one line per run, and medians per target.
import { fixed, median } from '../lib/stats.js'

export function describeThroughput (result) {
  return `${fixed(result.seconds, 2).padStart(6)} s  ${fixed(result.mbPerSecond, 1).padStart(7)} MB/s  ` +
    `server ${fixed(result.serverCpuSecondsPerGiB, 3)} CPU-s/GiB (user ${fixed(result.serverUserSecondsPerGiB, 2)}, ` +
    `sys ${fixed(result.serverSystemSecondsPerGiB, 2)})  client ${fixed(result.clientCpuSecondsPerGiB, 2)} CPU-s/GiB`
}

/** Medians of every numeric figure of the runs, per target, and the range of MB/s. */
export function summarizeThroughput (runs) {
  const summary = {}
  for (const [name, list] of runs) {
    summary[name] = { median: medians(list), mbPerSecondRange: range(list.map((run) => run.mbPerSecond)), runs: list }
  }
  return summary
}

export function medians (list) {
  const result = {}
  for (const key of Object.keys(list[0] ?? {})) {
    if (key !== 'round' && typeof list[0][key] === 'number') result[key] = median(list.map((run) => run[key]))
  }
  return result
}

export function range (values) {
  return [Math.min(...values), Math.max(...values)]
}
