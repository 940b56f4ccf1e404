// Workload 5: the server's peak RSS (VmHWM) over one upload in a single PATCH,
// at two sizes four times apart: memory must not grow with the file. Each
// measurement has a server process of its own, so that VmHWM is its alone.
import { measure, throughput, withServerState } from '../lib/harness.js'
import { memoryBytes } from '../lib/proc.js'
import { TARGET_NAMES } from '../lib/targets.js'
import { MiB, fixed } from '../lib/stats.js'

export const id = 5
export const title = 'peak RSS'
/** Memory is what the tuning trades for CPU: measured as a server runs without it. */
export const underDefaults = true

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { small, large } = config.memory
  log(`one PATCH of ${fixed(small / MiB, 0)} MiB, then of ${fixed(large / MiB, 0)} MiB, each to a fresh server process`)
  const summary = {}
  for (const name of TARGET_NAMES) summary[name] = {}
  for (const [key, bytes] of [['small', small], ['large', large]]) {
    for (const name of TARGET_NAMES) {
      const target = targets[name]
      summary[name][key] = await withServers([target], async ([server]) => {
        try {
          const upload = await target.create(server, { length: bytes, name: `memory-${key}.bin` })
          const measured = await measure(server, clock, () => target.patch(server, upload, { offset: 0, size: bytes, chunk }))
          const peakRssBytes = memoryBytes(server.pid, 'VmHWM')
          await target.verify(upload, bytes, chunk)
          const result = { bytes, idleRssBytes: server.idleRssBytes, peakRssBytes, ...throughput(measured, bytes) }
          log(`${name.padEnd(11)}  ${fixed(bytes / MiB, 0).padStart(5)} MiB  peak RSS ${fixed(peakRssBytes / 1e6, 1)} MB ` +
            `(idle ${fixed(server.idleRssBytes / 1e6, 1)} MB)  ${fixed(result.mbPerSecond, 0)} MB/s  ${fixed(result.serverCpuSecondsPerGiB, 3)} CPU-s/GiB`)
          return result
        } catch (error) {
          throw withServerState(server, error, `${key} upload`)
        }
      })
    }
  }
  for (const figures of Object.values(summary)) figures.growth = figures.large.peakRssBytes / figures.small.peakRssBytes
  return { small, large, targets: summary }
}
