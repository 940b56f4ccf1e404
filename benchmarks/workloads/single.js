// Workload 1: one large upload in a single PATCH (for the raw targets, a single
// PATCH of the same size to a file a POST created). Measured around the PATCH.
import { emptyDirectory, interleaved, measure, throughput } from '../lib/harness.js'
import { TARGET_NAMES } from '../lib/targets.js'
import { MiB, fixed, plural } from '../lib/stats.js'
import { describeThroughput, summarizeThroughput } from './common.js'

export const id = 1
export const title = 'one upload in a single PATCH'

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { bytes, rounds } = config.single
  log(`${fixed(bytes / MiB, 0)} MiB per PATCH, ${plural(rounds, 'round')} after a warm-up of the same size`)
  return withServers(TARGET_NAMES.map((name) => targets[name]), async (servers) => {
    const runs = await interleaved(servers, rounds, async (server, label) => {
      const { target } = server
      const upload = await target.create(server, { length: bytes, name: `single-${label}.bin` })
      const measured = await measure(server, clock, () => target.patch(server, upload, { offset: 0, size: bytes, chunk }), { primeBytes: bytes })
      await target.verify(upload, bytes, chunk)
      await emptyDirectory(server.dir)
      return throughput(measured, bytes)
    }, (round, server, result) => log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  ${describeThroughput(result)}`))
    return { bytes, rounds, targets: summarizeThroughput(runs) }
  })
}
