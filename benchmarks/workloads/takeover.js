// Workload 6: takeover. A client starts a PATCH, sends some MiB and stalls with
// its socket open (a dead mobile connection). The resuming client, on new
// connections, sends a HEAD and then a PATCH with the rest: how long from the
// HEAD going out until that PATCH is answered? tus targets only: raw has no
// protocol to resume with.
import { setTimeout as sleep } from 'node:timers/promises'
import { stall } from '../lib/client.js'
import { emptyDirectory, interleaved } from '../lib/harness.js'
import { TUS_TARGETS } from '../lib/targets.js'
import { MiB, fixed, median, plural } from '../lib/stats.js'

export const id = 6
export const title = 'takeover of a stalled PATCH'

/** How long the stalled request is given to get its own answer once the upload was taken over. */
const STALLED_ANSWER_WAIT_MS = 2000

export async function run ({ config, targets, withServers, chunk, log }) {
  const { stalledBytes, restBytes, stallMs, rounds } = config.takeover
  const bytes = stalledBytes + restBytes
  log(`${fixed(stalledBytes / MiB, 0)} MiB sent, a ${stallMs} ms stall, then HEAD + PATCH of the rest; ${plural(rounds, 'round')} after a warm-up`)
  return withServers(TUS_TARGETS.map((name) => targets[name]), async (servers) => {
    const runs = await interleaved(servers, rounds, async (server, label) => {
      const { target } = server
      const upload = await target.create(server, { length: bytes, name: `takeover-${label}.bin` })
      const stalled = await stall({
        port: server.port,
        method: 'PATCH',
        path: upload.path,
        headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        contentLength: bytes,
        size: stalledBytes,
        patternStart: upload.patternStart,
        chunk
      })
      try {
        await sleep(stallMs)
        const started = performance.now()
        let headMs, offset
        try {
          offset = await target.head(server, upload)
          headMs = performance.now() - started
          await target.patch(server, upload, { offset, size: bytes - offset, chunk })
        } catch (error) {
          return { failed: error.message }
        }
        const totalMs = performance.now() - started
        const answer = await Promise.race([stalled.outcome, sleep(STALLED_ANSWER_WAIT_MS, { pending: true })])
        await target.verify(upload, bytes, chunk)
        return { totalMs, headMs, patchMs: totalMs - headMs, headOffset: offset, stalledAnswer: describeAnswer(answer) }
      } finally {
        stalled.destroy()
        await emptyDirectory(server.dir)
      }
    }, (round, server, result) => log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  ` + (result.failed === undefined
      ? `${fixed(result.totalMs, 1).padStart(7)} ms (HEAD ${fixed(result.headMs, 1)} ms at offset ${result.headOffset}, PATCH ${fixed(result.patchMs, 1)} ms); ` +
        `the stalled PATCH got ${result.stalledAnswer}`
      : `FAILED: ${result.failed}`)))
    const summary = {}
    for (const [name, list] of runs) {
      const good = list.filter((result) => result.failed === undefined)
      summary[name] = {
        median: {
          totalMs: median(good.map((result) => result.totalMs)),
          headMs: median(good.map((result) => result.headMs)),
          patchMs: median(good.map((result) => result.patchMs))
        },
        failures: list.length - good.length,
        runs: list
      }
    }
    return { stalledBytes, restBytes, stallMs, rounds, targets: summary }
  })
}

function describeAnswer (answer) {
  if (answer.pending) return `no answer within ${STALLED_ANSWER_WAIT_MS} ms of the takeover`
  const when = `${fixed(answer.seconds * 1000, 0)} ms after it began`
  return answer.error === undefined ? `${answer.status}, ${when}` : `${answer.error}, ${when}`
}
