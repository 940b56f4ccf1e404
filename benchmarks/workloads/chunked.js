// Workload 2: one upload sent in PATCHes of 4 MiB, one after the other over one
// keep-alive connection, as a tus client does. Measured around the whole
// upload, its creation included.
import { Agent } from 'node:http'
import { emptyDirectory, interleaved, measure, throughput } from '../lib/harness.js'
import { TARGET_NAMES, uploadInPatches } from '../lib/targets.js'
import { MiB, fixed, plural } from '../lib/stats.js'
import { describeThroughput, summarizeThroughput } from './common.js'

export const id = 2
export const title = 'one upload in 4 MiB PATCHes'

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { bytes, patchBytes, rounds } = config.chunked
  log(`${fixed(bytes / MiB, 0)} MiB in ${bytes / patchBytes} PATCHes of ${fixed(patchBytes / MiB, 0)} MiB on one keep-alive connection, ${plural(rounds, 'round')} after a warm-up`)
  return withServers(TARGET_NAMES.map((name) => targets[name]), async (servers) => {
    const runs = await interleaved(servers, rounds, async (server, label) => {
      const result = await chunkedUpload(server, { bytes, patchBytes, name: `chunked-${label}.bin`, chunk, clock })
      await emptyDirectory(server.dir)
      return result
    }, (round, server, result) => log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  ${describeThroughput(result)}`))
    return { bytes, patchBytes, rounds, targets: summarizeThroughput(runs) }
  })
}

/** One upload in PATCHes of `patchBytes` on a keep-alive connection, measured whole and verified. */
export async function chunkedUpload (server, { bytes, patchBytes, name, chunk, clock, headersFor }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const measured = await measure(server, clock, () => uploadInPatches(server.target, server, { bytes, patchBytes, name, chunk, agent, headersFor }), { primeBytes: bytes })
    await server.target.verify(measured.value.upload, bytes, chunk)
    return throughput(measured, bytes)
  } finally {
    agent.destroy()
  }
}
