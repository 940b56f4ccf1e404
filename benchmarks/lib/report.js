// The report: first the ratios against the issue's targets, then a table per
// workload with every target.
import { buildLine, machineLine } from './build.js'
import { describeSettings } from './config.js'
import { MiB, fixed, table } from './stats.js'

const FT = 'fastify-tus'
const MB = 1e6

/** The headline rows: fastify-tus against raw and tus-server, with the goal of each figure and whether it is met. */
function headline (results) {
  const { workloads: w } = results
  const rows = []
  const add = (row) => rows.push(row)
  const status = (id) => w[id] === undefined ? 'not run' : w[id].error !== undefined ? 'FAILED' : undefined
  const values = (id, pick) => {
    if (status(id) !== undefined) return undefined
    const of = (name) => {
      const target = w[id].targets?.[name]
      return target === undefined ? undefined : pick(target)
    }
    return { ft: of(FT), raw: of('raw'), loaded: of('raw-loaded'), durable: of('raw-durable'), tus: of('tus-server') }
  }
  const atLeast = (ratio) => (v) => ({ goal: `>= ${ratio}x raw`, met: v.ft / v.raw >= ratio })
  const atMost = (ratio) => (v) => ({ goal: `<= ${ratio}x raw`, met: v.ft / v.raw <= ratio })
  const row = (id, label, pick, digits, judge) => {
    const v = values(id, pick)
    if (v === undefined) return add({ label, missing: status(id) })
    add({ label, ...v, digits, ...(judge?.(v) ?? {}) })
  }

  // raw knows no uploads; raw-durable does the least file work a crash-safe server must (a record renamed
  // into place; on HEAD and PATCH its stat beside the data file's, a PATCH opening the data file meanwhile)
  const besideDurable = (judge) => (v) => ({ ...judge(v), note: v.durable === undefined ? undefined : `${ratio(v.ft, v.durable)} raw-durable` })
  const single = w[1]?.bytes === undefined ? '' : ` (${size(w[1].bytes)})`
  row(1, `1 single PATCH${single}: MB/s`, (t) => t.median.mbPerSecond, 0, besideDurable(atLeast(0.95)))
  row(1, '1 single PATCH: server CPU-s/GiB', (t) => t.median.serverCpuSecondsPerGiB, 3, besideDurable(atMost(1.1)))
  const chunked = w[2]?.bytes === undefined ? '' : ` (${size(w[2].bytes)} in ${size(w[2].patchBytes)})`
  row(2, `2 PATCHes${chunked}: MB/s`, (t) => t.median.mbPerSecond, 0, besideDurable(atLeast(0.95)))
  row(2, '2 PATCHes: server CPU-s/GiB', (t) => t.median.serverCpuSecondsPerGiB, 3, besideDurable(atMost(1.1)))
  const concurrent = w[3]?.uploads === undefined ? '' : ` (${w[3].uploads} x ${size(w[3].bytes)})`
  row(3, `3 concurrent${concurrent}: aggregate MB/s`, (t) => t.median.mbPerSecond, 0, besideDurable(atLeast(0.95)))
  row(3, '3 concurrent: server CPU-s/GiB', (t) => t.median.serverCpuSecondsPerGiB, 3, besideDurable(atMost(1.1)))
  row(3, '3 concurrent: PATCH p99 ms', (t) => t.median.p99PatchMs, 0)
  row(4, '4 creation POST/s', (t) => t.post.median.requestsPerSecond, 0, besideDurable(atLeast(0.7)))
  row(4, '4 HEAD/s', (t) => t.head.median.requestsPerSecond, 0, besideDurable(atLeast(0.7)))
  row(4, '4 POST: server CPU-us/request', (t) => t.post.median.serverCpuMicrosecondsPerRequest, 0)
  row(4, '4 HEAD: server CPU-us/request', (t) => t.head.median.serverCpuMicrosecondsPerRequest, 0)
  const small = w[5]?.small === undefined ? '' : ` (${size(w[5].small)})`
  const large = w[5]?.large === undefined ? '' : ` (${size(w[5].large)})`
  row(5, `5 peak RSS MB${small}`, (t) => t.small.peakRssBytes / MB, 1, (v) => ({ goal: '< 100 MB', met: v.ft < 100 }))
  row(5, `5 peak RSS MB${large}`, (t) => t.large.peakRssBytes / MB, 1, () => ({
    goal: '<= 1.1x the smaller upload', met: w[5].targets[FT].growth <= 1.1, note: `${fixed(w[5].targets[FT].growth, 3)}x`
  }))
  row(6, '6 takeover: HEAD + PATCH ms', (t) => t.median.totalMs, 1, () => {
    const { failures, runs } = w[6].targets[FT]
    return { goal: '< 50 ms', met: failures === 0 && w[6].targets[FT].median.totalMs < 50, note: failures > 0 ? `${failures}/${runs.length} runs failed` : undefined }
  })
  if (status(7) !== undefined) {
    add({ label: '7 sha256 checksum, 4 MiB PATCHes: extra server CPU-s/GiB', missing: status(7) })
    add({ label: '7 sha256 checksum, one PATCH: extra server CPU-s/GiB', missing: status(7) })
    add({ label: '7 concatenation: extra server CPU-s/GiB', missing: status(7) })
  } else {
    const { targets, tightLoop } = w[7]
    const extra = (name, variant) => targets[name].variants[variant].extraServerCpuSecondsPerGiB
    // raw hashes each piece as it arrives too: its extra is what hashing received bytes costs a Node server at least
    const checksumRow = (label, variant) => add({
      label,
      ft: extra(FT, variant),
      raw: extra('raw', variant),
      digits: 3,
      goal: `<= ${fixed(tightLoop.cpuSecondsPerGiB, 3)} (tight loop)`,
      met: extra(FT, variant) <= tightLoop.cpuSecondsPerGiB
    })
    checksumRow('7 sha256 checksum, 4 MiB PATCHes: extra server CPU-s/GiB', 'checksum')
    checksumRow('7 sha256 checksum, one PATCH: extra server CPU-s/GiB', 'whole-checksum')
    add({ label: '7 concatenation: extra server CPU-s/GiB', ft: extra(FT, 'concat'), digits: 3 })
  }
  return rows
}

function headlineTable (rows) {
  return table(headlineCells(rows))
}

/** Quick or full, and what the servers ran with: the tuning or not, more node flags, allocator settings (MALLOC_* variables) inherited. */
function modeLine (config) {
  const tuning = describeSettings(config.tuning)
  const parts = [config.quick ? 'quick' : 'full',
    tuning === '' ? 'servers under node\'s and glibc\'s defaults' : `servers with ${tuning} (README, Tuning), but under the defaults in workload 5 (memory)`]
  if (config.nodeFlags.length > 0) parts.push(`every server also with ${config.nodeFlags.join(' ')}`)
  const inherited = Object.entries(config.mallocEnvironment).map(([name, value]) => `${name}=${value}`)
  if (inherited.length > 0) parts.push(`inherited by every server: ${inherited.join(' ')}`)
  return parts.join('; ')
}

/** The headline as a Markdown table, for the README. */
export function headlineMarkdown (results) {
  const [header, ...rows] = headlineCells(headline(results))
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [`machine: ${machineLine(results.machine)}`, `measured: ${buildLine(results.build)}`, `mode: ${modeLine(results.config)}`, '',
    line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function headlineCells (rows) {
  const header = ['figure', `${FT}/raw`, `${FT}/raw-loaded`, `${FT}/tus-server`, 'goal', 'met', FT, 'raw', 'raw-loaded', 'tus-server']
  return [header, ...rows.filter((row) => row.missing !== 'not run').map((row) => {
    if (row.missing !== undefined) return [row.label, row.missing]
    const cell = (value) => value === undefined ? 'n/a' : fixed(value, row.digits)
    return [
      row.label,
      ratio(row.ft, row.raw),
      ratio(row.ft, row.loaded),
      ratio(row.ft, row.tus),
      row.goal ?? '',
      row.met === undefined ? '' : `${row.met ? 'yes' : 'NO'}${row.note === undefined ? '' : ` (${row.note})`}`,
      cell(row.ft),
      cell(row.raw),
      row.loaded === undefined ? '' : cell(row.loaded),
      cell(row.tus)
    ]
  })]
}

export function report (results) {
  const { machine, build, config, workloads } = results
  const parts = [
    `machine: ${machineLine(machine)}`,
    `measured: ${buildLine(build)}`,
    `mode: ${modeLine(config)}; workloads ${config.only.join(',')}; medians of interleaved rounds; MB = 10^6 bytes; ` +
      `CPU = utime + stime of the server process from /proc (${machine.clockTicksPerSecond} ticks/s)`,
    '',
    headlineTable(headline(results))
  ]
  for (const [id, render] of Object.entries(DETAILS)) {
    const workload = workloads[id]
    if (workload === undefined) continue
    parts.push('', `workload ${id}: ${workload.title}${workload.description === undefined ? '' : ` (${workload.description})`}`)
    if (workload.foreignCpu !== undefined) {
      parts.push(`CPU outside the benchmark (other programs, kernel threads such as writeback): ${fixed(workload.foreignCpu.shareOfMachine * 100, 0)}% of the machine` +
        (workload.foreignCpu.stealSeconds > 0 ? `, ${fixed(workload.foreignCpu.stealSeconds, 1)} s stolen by the hypervisor` : ''))
    }
    parts.push(workload.error === undefined ? render(workload) : `FAILED: ${workload.error}`)
  }
  return parts.join('\n')
}

const DETAILS = {
  1: throughputTable,
  2: throughputTable,
  3: (workload) => table([
    ['target', 'MB/s', 'min-max', 'CPU-s/GiB', '(user', 'sys)', 'client CPU-s/GiB', 'PATCH p50 ms', 'p99 ms', 'max ms'],
    ...Object.entries(workload.targets).map(([name, { median, mbPerSecondRange }]) => [
      name, fixed(median.mbPerSecond, 0), rangeText(mbPerSecondRange), fixed(median.serverCpuSecondsPerGiB, 3),
      fixed(median.serverUserSecondsPerGiB, 2), fixed(median.serverSystemSecondsPerGiB, 2), fixed(median.clientCpuSecondsPerGiB, 2),
      fixed(median.p50PatchMs, 0), fixed(median.p99PatchMs, 0), fixed(median.maxPatchMs, 0)
    ])
  ]),
  4: (workload) => table([
    ['target', 'POST/s', 'min-max', 'CPU-us/req', 'p99 ms', 'HEAD/s', 'min-max', 'CPU-us/req', 'p99 ms'],
    ...Object.entries(workload.targets).map(([name, { post, head }]) => [
      name,
      fixed(post.median.requestsPerSecond, 0), rangeText(post.requestsPerSecondRange), fixed(post.median.serverCpuMicrosecondsPerRequest, 0), fixed(post.median.latencyP99Ms, 0),
      fixed(head.median.requestsPerSecond, 0), rangeText(head.requestsPerSecondRange), fixed(head.median.serverCpuMicrosecondsPerRequest, 0), fixed(head.median.latencyP99Ms, 0)
    ])
  ]),
  5: (workload) => table([
    ['target', 'idle RSS MB', `peak MB, ${size(workload.small)}`, `peak MB, ${size(workload.large)}`, 'growth', `MB/s, ${size(workload.small)}`, `MB/s, ${size(workload.large)}`],
    ...Object.entries(workload.targets).map(([name, { small, large, growth }]) => [
      name, fixed(small.idleRssBytes / MB, 1), fixed(small.peakRssBytes / MB, 1), fixed(large.peakRssBytes / MB, 1), `${fixed(growth, 3)}x`,
      fixed(small.mbPerSecond, 0), fixed(large.mbPerSecond, 0)
    ])
  ]),
  6: (workload) => table([
    ['target', 'HEAD + PATCH ms', 'HEAD ms', 'PATCH ms', 'failed runs', 'the stalled PATCH got (last round)'],
    ...Object.entries(workload.targets).map(([name, { median, failures, runs }]) => [
      name, fixed(median.totalMs, 1), fixed(median.headMs, 1), fixed(median.patchMs, 1), `${failures}/${runs.length}`,
      runs.at(-1)?.stalledAnswer ?? runs.at(-1)?.failed ?? ''
    ])
  ]),
  7: (workload) => [
    table([
      ['target', 'variant', 'MB/s', 'min-max', 'CPU-s/GiB', '(user', 'sys)', 'against', 'extra CPU-s/GiB', 'MB/s vs it', 'CPU vs it', 'final POST ms'],
      ...Object.entries(workload.targets).flatMap(([target, { variants }]) => Object.entries(variants).map(([name, variant]) => [
        target, name, fixed(variant.median.mbPerSecond, 0), rangeText(variant.mbPerSecondRange), fixed(variant.median.serverCpuSecondsPerGiB, 3),
        fixed(variant.median.serverUserSecondsPerGiB, 2), fixed(variant.median.serverSystemSecondsPerGiB, 2), variant.against ?? '',
        variant.extraServerCpuSecondsPerGiB === undefined ? '' : fixed(variant.extraServerCpuSecondsPerGiB, 3),
        variant.mbPerSecondOverBaseline === undefined ? '' : ratio(variant.mbPerSecondOverBaseline, 1),
        variant.serverCpuOverBaseline === undefined ? '' : ratio(variant.serverCpuOverBaseline, 1),
        variant.median.finalPostMs === undefined ? '' : fixed(variant.median.finalPostMs, 0)
      ]))
    ]),
    `tight-loop sha256 in the benchmark process: ${fixed(workload.tightLoop.cpuSecondsPerGiB, 3)} CPU-s/GiB; ` +
      'extra = median over rounds of (variant - the variant it is set against) in the same round and target; ' +
      'raw hashes each piece of a body as it arrives and has no concatenation; tus-server: n/a (it has neither extension)'
  ].join('\n')
}

function throughputTable (workload) {
  const raw = workload.targets.raw?.median
  return table([
    ['target', 'MB/s', 'min-max', 'CPU-s/GiB', '(user', 'sys)', 'faults k/GiB', 'client CPU-s/GiB', 'MB/s vs raw', 'CPU vs raw'],
    ...Object.entries(workload.targets).map(([name, { median, mbPerSecondRange }]) => [
      name, fixed(median.mbPerSecond, 0), rangeText(mbPerSecondRange), fixed(median.serverCpuSecondsPerGiB, 3),
      fixed(median.serverUserSecondsPerGiB, 2), fixed(median.serverSystemSecondsPerGiB, 2), fixed(median.serverMinorFaultsPerGiB / 1000, 1),
      fixed(median.clientCpuSecondsPerGiB, 2), ratio(median.mbPerSecond, raw?.mbPerSecond), ratio(median.serverCpuSecondsPerGiB, raw?.serverCpuSecondsPerGiB)
    ])
  ])
}

function ratio (a, b) {
  if (a === undefined || b === undefined || !Number.isFinite(a / b)) return ''
  const value = a / b
  return `${value >= 0.1 ? fixed(value, 2) : value.toPrecision(2)}x`
}

function rangeText ([low, high]) {
  return `${fixed(low, 0)}-${fixed(high, 0)}`
}

function size (bytes) {
  return bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : `${fixed(bytes / MiB, 0)} MiB`
}
