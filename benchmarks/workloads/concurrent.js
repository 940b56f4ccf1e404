// Workload 3: many uploads at once, each in 4 MiB PATCHes on a keep-alive
// connection of its own. Aggregate MB/s, server CPU per GiB and the latency of
// the PATCHes (p99 of each round).
import { Agent } from 'node:http'
import { emptyDirectory, interleaved, measure, throughput } from '../lib/harness.js'
import { TARGET_NAMES, uploadInPatches } from '../lib/targets.js'
import { MiB, fixed, percentile, plural } from '../lib/stats.js'
import { describeThroughput, summarizeThroughput } from './common.js'

export const id = 3
export const title = 'concurrent uploads'

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { uploads, bytes, patchBytes, rounds } = config.concurrent
  log(`${uploads} uploads of ${fixed(bytes / MiB, 0)} MiB at once, in ${fixed(patchBytes / MiB, 0)} MiB PATCHes, ${plural(rounds, 'round')} after a warm-up`)
  return withServers(TARGET_NAMES.map((name) => targets[name]), async (servers) => {
    const runs = await interleaved(servers, rounds, async (server, label) => {
      const { target } = server
      const agents = Array.from({ length: uploads }, () => new Agent({ keepAlive: true, maxSockets: 1 }))
      try {
        const measured = await measure(server, clock, () => Promise.all(agents.map((agent, index) =>
          uploadInPatches(target, server, { bytes, patchBytes, name: `concurrent-${label}-${index}.bin`, chunk, agent }))), { primeBytes: uploads * bytes })
        for (const { upload } of measured.value) await target.verify(upload, bytes, chunk)
        const latencies = measured.value.flatMap((done) => done.latencies)
        await emptyDirectory(server.dir)
        return {
          ...throughput(measured, uploads * bytes),
          patches: latencies.length,
          p50PatchMs: percentile(latencies, 50) * 1000,
          p99PatchMs: percentile(latencies, 99) * 1000,
          maxPatchMs: Math.max(...latencies) * 1000
        }
      } finally {
        for (const agent of agents) agent.destroy()
      }
    }, (round, server, result) => log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  ${describeThroughput(result)}  ` +
      `PATCH p50 ${fixed(result.p50PatchMs, 0)} ms, p99 ${fixed(result.p99PatchMs, 0)} ms`))
    return { uploads, bytes, patchBytes, rounds, targets: summarizeThroughput(runs) }
  })
}
