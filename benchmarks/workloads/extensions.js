// Workload 7: what a checksum and a concatenation cost fastify-tus against its
// plain uploads of workload 2, and what hashing costs raw (@tus/server has
// neither extension).
//   plain           one upload in 4 MiB PATCHes
//   checksum        the same, each PATCH with `Upload-Checksum: sha256 ...`
//   whole           the same bytes in a single PATCH
//   whole-checksum  that PATCH with `Upload-Checksum: sha256 ...`
//   concat          4 partial uploads of a quarter each (4 MiB PATCHes), then
//                   the final upload, assembled by its creation POST (fastify-tus)
// Each variant is set against its plain twin of the same round and target
// (checksum and concat against plain, whole-checksum against whole). The
// single-PATCH pair shows the hashing alone: in 4 MiB PATCHes the collector's
// two steady states (README, Performance) change a plain upload's CPU by more
// than the hash costs. raw hashes each piece of a body as it arrives, as
// fastify-tus does, so its extra is what hashing received bytes costs a Node
// server at least. Rounds interleave the variants, and the targets within each
// variant. For comparison, a tight loop hashes the same bytes with sha256 in this
// process.
import { createHash } from 'node:crypto'
import { Agent } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { emptyDirectory, measure, throughput, withServerState } from '../lib/harness.js'
import { uploadInPatches } from '../lib/targets.js'
import { GiB, MiB, fixed, median, plural } from '../lib/stats.js'
import { patternPieces } from '../lib/verify.js'
import { chunkedUpload } from './chunked.js'
import { describeThroughput, medians, range } from './common.js'

export const id = 7
export const title = 'checksum and concatenation costs (fastify-tus; raw for the checksum)'

const VARIANTS = ['plain', 'checksum', 'whole', 'whole-checksum', 'concat']
/** The variant each one is set against. */
const BASELINES = { checksum: 'plain', 'whole-checksum': 'whole', concat: 'plain' }
/** What each target runs: raw has no concatenation. */
const TARGET_VARIANTS = { raw: VARIANTS.filter((variant) => variant !== 'concat'), 'fastify-tus': VARIANTS }
const PAUSE_MS = 200
const HASH_REPEATS = 3

export async function run ({ config, targets, withServers, chunk, clock, log }) {
  const { bytes, patchBytes, partials, rounds, hashBytes } = config.extensions
  const partialBytes = bytes / partials
  if (!Number.isInteger(partialBytes)) throw new Error(`${bytes} bytes do not split into ${partials} equal partial uploads`)
  log(`${fixed(bytes / MiB, 0)} MiB in ${fixed(patchBytes / MiB, 0)} MiB PATCHes: plain, with sha256 checksums, both again in a single PATCH (raw and fastify-tus), ` +
    `and as ${partials} partial uploads + a final (fastify-tus); ${plural(rounds, 'round')} after a warm-up`)
  const tightLoop = sha256TightLoop(chunk, hashBytes)
  log(`tight-loop sha256 here: ${fixed(tightLoop.cpuSecondsPerGiB, 3)} CPU-s/GiB (${fixed(hashBytes / MiB, 0)} MiB, median of ${HASH_REPEATS})`)

  const digests = new Map()
  const checksumHeaders = (position, size) => {
    const key = `${position % chunk.length}:${size}`
    if (!digests.has(key)) digests.set(key, patternDigest(chunk, position, size))
    return { 'upload-checksum': `sha256 ${digests.get(key)}` }
  }

  return withServers(Object.keys(TARGET_VARIANTS).map((name) => targets[name]), async (servers) => {
    const variantsOf = (server) => ({
      plain: (label) => chunkedUpload(server, { bytes, patchBytes, name: `plain-${label}.bin`, chunk, clock }),
      checksum: (label) => chunkedUpload(server, { bytes, patchBytes, name: `checksum-${label}.bin`, chunk, clock, headersFor: checksumHeaders }),
      whole: (label) => chunkedUpload(server, { bytes, patchBytes: bytes, name: `whole-${label}.bin`, chunk, clock }),
      'whole-checksum': (label) => chunkedUpload(server, { bytes, patchBytes: bytes, name: `whole-checksum-${label}.bin`, chunk, clock, headersFor: checksumHeaders }),
      concat: (label) => concatenated(server, { partials, partialBytes, patchBytes, name: `concat-${label}.bin`, chunk, clock })
    })
    const runners = new Map(servers.map((server) => [server, variantsOf(server)]))
    const runs = new Map(servers.map((server) => [server, Object.fromEntries(TARGET_VARIANTS[server.target.name].map((variant) => [variant, []]))]))
    const runOne = async (server, variant, label) => {
      await sleep(PAUSE_MS)
      try {
        const result = await runners.get(server)[variant](label)
        await emptyDirectory(server.dir)
        return result
      } catch (error) {
        throw withServerState(server, error, `${variant} ${label}`)
      }
    }
    /** The servers that run `variant`, in the order of odd rounds, reversed in even ones: each target goes first as often. */
    const turn = (variant, round) => (round % 2 === 1 ? servers : [...servers].reverse()).filter((server) => variant in runs.get(server))
    for (const variant of VARIANTS) {
      for (const server of turn(variant, 1)) await runOne(server, variant, 'warmup')
    }
    for (let round = 1; round <= rounds; round++) {
      for (const variant of VARIANTS) {
        for (const server of turn(variant, round)) {
          const result = await runOne(server, variant, `r${round}`)
          runs.get(server)[variant].push({ round, ...result })
          log(`round ${round}/${rounds}  ${server.target.name.padEnd(11)}  ${variant.padEnd(14)}  ${describeThroughput(result)}` +
            (result.finalPostMs === undefined ? '' : `  final POST ${fixed(result.finalPostMs, 0)} ms`))
        }
      }
    }
    const summaries = {}
    for (const server of servers) summaries[server.target.name] = { variants: summarize(runs.get(server)) }
    return { bytes, patchBytes, partials, rounds, tightLoop, targets: summaries }
  })
}

/** Medians of each variant's runs, and of each one's difference from the variant it is set against, round by round. */
function summarize (runs) {
  const paired = (variant, key) => median(runs[variant].map((run, index) => run[key] - runs[BASELINES[variant]][index][key]))
  const pairedRatio = (variant, key) => median(runs[variant].map((run, index) => run[key] / runs[BASELINES[variant]][index][key]))
  const summary = {}
  for (const variant of Object.keys(runs)) {
    summary[variant] = { median: medians(runs[variant]), mbPerSecondRange: range(runs[variant].map((run) => run.mbPerSecond)), runs: runs[variant] }
    if (BASELINES[variant] !== undefined) {
      summary[variant].against = BASELINES[variant]
      summary[variant].extraServerCpuSecondsPerGiB = paired(variant, 'serverCpuSecondsPerGiB')
      summary[variant].mbPerSecondOverBaseline = pairedRatio(variant, 'mbPerSecond')
      summary[variant].serverCpuOverBaseline = pairedRatio(variant, 'serverCpuSecondsPerGiB')
    }
  }
  return summary
}

/** Partial uploads one after the other, each in PATCHes on a keep-alive connection, then the final POST; measured whole. */
async function concatenated (server, { partials, partialBytes, patchBytes, name, chunk, clock }) {
  const { target } = server
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    const measured = await measure(server, clock, async () => {
      // each partial goes on with the pattern where the one before it ended: the final holds one stretch of it, in order
      const uploads = []
      for (let index = 0; index < partials; index++) {
        const patternStart = index === 0 ? undefined : uploads[0].patternStart + index * partialBytes
        uploads.push((await uploadInPatches(target, server, { bytes: partialBytes, patchBytes, concat: 'partial', patternStart, chunk, agent })).upload)
      }
      return target.create(server, { name, concat: `final;${uploads.map((upload) => upload.url).join(' ')}`, agent, patternStart: uploads[0].patternStart })
    }, { primeBytes: 2 * partials * partialBytes }) // the partials, then the final's copy of them
    const final = measured.value
    await target.verify(final, partials * partialBytes, chunk)
    return { ...throughput(measured, partials * partialBytes), finalPostMs: final.createSeconds * 1000 }
  } finally {
    agent.destroy()
  }
}

/** The base64 sha256 of `size` bytes of the pattern from `position`, hashed piece by piece (no copy of them). */
function patternDigest (chunk, position, size) {
  const hash = createHash('sha256')
  for (const piece of patternPieces(chunk, position, size)) hash.update(piece)
  return hash.digest('base64')
}

/** sha256 over `bytes` of the pattern, in this process: CPU seconds per GiB, the median of a few repeats. */
function sha256TightLoop (chunk, bytes) {
  const perGiB = []
  for (let repeat = 0; repeat < HASH_REPEATS; repeat++) {
    const before = process.cpuUsage()
    const hash = createHash('sha256')
    for (let done = 0; done < bytes; done += chunk.length) hash.update(done + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - done))
    hash.digest()
    const used = process.cpuUsage(before)
    perGiB.push((used.user + used.system) / 1e6 / (bytes / GiB))
  }
  return { bytes, cpuSecondsPerGiB: median(perGiB), repeats: perGiB }
}
