// What every workload uses: its servers (one process per target, each with an
// upload directory of its own), measurement around a piece of client work, and
// the interleaved rounds.
import { mkdir, readdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { primePageCache } from './prime.js'
import { machineTimes, memoryBytes, processTimes } from './proc.js'
import { startServer, stopServer } from './server.js'
import { GiB } from './stats.js'

const PAUSE_MS = 200

/** CPU ticks the servers used over their whole lives, counted as each one stops. */
let serverTicks = 0

/**
 * Starts a server for each target (fresh processes under `settings`, fresh
 * directories under `root`), runs `work` with them and stops them whatever
 * happens; the directories are removed, unless `keep` (they go with the run's
 * temporary directory at its end).
 */
export async function withServers (targets, root, work, { settings, keep = false }) {
  const servers = []
  try {
    for (const target of targets) servers.push(await launch(target, join(root, target.name), settings))
    return await work(servers)
  } finally {
    for (const server of servers) {
      try {
        const { user, system } = processTimes(server.pid)
        serverTicks += user + system
      } catch {} // gone already
    }
    await Promise.all(servers.map((server) => stopServer(server.child)))
    if (!keep) await rm(root, { recursive: true, force: true })
  }
}

/** One server process for `target` under `settings`, storing in `dir` (created). */
async function launch (target, dir, settings) {
  await mkdir(dir, { recursive: true })
  const started = await startServer(target.script, [dir, ...target.args], settings)
  return { ...started, dir, target, idleRssBytes: memoryBytes(started.pid, 'VmRSS') }
}

/** Describes a server that failed: has it exited? */
export function withServerState (server, error, label) {
  const { exitCode, signalCode } = server.child
  const died = exitCode === null && signalCode === null ? '' : ` (the ${server.target.name} server has exited: code ${exitCode}, signal ${signalCode})`
  return new Error(`${server.target.name} ${label}: ${error.message}${died}`, { cause: error })
}

/**
 * Runs `work` and measures it: wall time here, CPU time and minor faults of
 * the server process (all its threads) from /proc, CPU time of this process.
 * With `primeBytes`, that much page cache is written and freed just before, in
 * the target's root directory (prime.js says why).
 */
export async function measure (server, clock, work, { primeBytes = 0 } = {}) {
  if (primeBytes > 0) primePageCache(dirname(server.dir), primeBytes)
  const serverBefore = processTimes(server.pid)
  const clientBefore = process.cpuUsage()
  const started = performance.now()
  const value = await work()
  const seconds = (performance.now() - started) / 1000
  const serverAfter = processTimes(server.pid)
  const client = process.cpuUsage(clientBefore)
  const serverUserSeconds = (serverAfter.user - serverBefore.user) / clock.ticks
  const serverSystemSeconds = (serverAfter.system - serverBefore.system) / clock.ticks
  return {
    value,
    seconds,
    serverUserSeconds,
    serverSystemSeconds,
    serverCpuSeconds: serverUserSeconds + serverSystemSeconds,
    serverMinorFaults: serverAfter.minorFaults - serverBefore.minorFaults,
    clientCpuSeconds: (client.user + client.system) / 1e6
  }
}

/** The throughput figures of a measurement that moved `bytes`. */
export function throughput (measured, bytes) {
  const gib = bytes / GiB
  return {
    bytes,
    seconds: measured.seconds,
    mbPerSecond: bytes / 1e6 / measured.seconds,
    serverCpuSecondsPerGiB: measured.serverCpuSeconds / gib,
    serverUserSecondsPerGiB: measured.serverUserSeconds / gib,
    serverSystemSecondsPerGiB: measured.serverSystemSeconds / gib,
    serverMinorFaultsPerGiB: measured.serverMinorFaults / gib,
    clientCpuSecondsPerGiB: measured.clientCpuSeconds / gib
  }
}

/**
 * Rounds interleaved across servers (A B C, B C A, C A B ...: each round starts
 * one target further on, so that no target always follows the same one), after
 * one unmeasured warm-up run of each: `run(server, label)` returns a run's
 * figures, or throws. A short pause before each run lets the previous one's
 * writeback settle.
 */
export async function interleaved (servers, rounds, run, log) {
  const runs = new Map(servers.map((server) => [server.target.name, []]))
  for (const server of servers) await runOne(server, 'warmup')
  for (let round = 1; round <= rounds; round++) {
    for (const server of rotated(servers, round - 1)) {
      const result = await runOne(server, `r${round}`)
      runs.get(server.target.name).push({ round, ...result })
      log?.(round, server, result)
    }
  }
  return runs

  async function runOne (server, label) {
    await sleep(PAUSE_MS)
    try {
      return await run(server, label)
    } catch (error) {
      throw withServerState(server, error, label)
    }
  }
}

/** `list` starting at index `shift` (modulo its length), wrapping around. */
function rotated (list, shift) {
  const start = shift % list.length
  return [...list.slice(start), ...list.slice(0, start)]
}

/** Removes everything in `dir` (the uploads of a finished run), keeping the directory. */
export async function emptyDirectory (dir) {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true })
}

/**
 * Starts counting the CPU time the machine spends outside this process and its
 * servers: other programs, and kernel threads (writeback included). Returns a
 * function that gives it, in seconds and as a share of all cores over the wall
 * time, once the servers counted are stopped.
 */
export function foreignCpu (clock, cores) {
  const machineBefore = machineTimes()
  const serversBefore = serverTicks
  const selfBefore = process.cpuUsage()
  const started = performance.now()
  return () => {
    const machine = machineTimes()
    const self = process.cpuUsage(selfBefore)
    const seconds = (performance.now() - started) / 1000
    const ours = (serverTicks - serversBefore) / clock.ticks + (self.user + self.system) / 1e6
    const foreignSeconds = Math.max(0, (machine.busy - machineBefore.busy) / clock.ticks - ours)
    return {
      seconds: foreignSeconds,
      shareOfMachine: foreignSeconds / (seconds * cores),
      stealSeconds: (machine.steal - machineBefore.steal) / clock.ticks
    }
  }
}
