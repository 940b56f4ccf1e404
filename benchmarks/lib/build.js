// What is measured and where: the commit, the state of lib/, a snapshot of
// dist/ (so that a rebuild during the run cannot mix two versions), the machine.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join, relative } from 'node:path'
import { GiB, fixed } from './stats.js'

/** dist/ must exist; it should not be older than lib/. */
export function describeBuild (root) {
  const dist = join(root, 'dist')
  const entry = join(dist, 'index.js')
  if (!existsSync(entry)) throw new Error('dist/index.js is missing: run `npm run build` first (npm run bench does)')
  const builtAt = statSync(entry).mtimeMs
  const git = (...args) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return null
    }
  }
  const changes = git('status', '--porcelain', '--', 'lib')
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    libUncommittedChanges: changes === null ? null : changes.split('\n').filter(Boolean).map((line) => line.slice(3)),
    stale: newest(join(root, 'lib')) > builtAt,
    builtAt: new Date(builtAt).toISOString(),
    distSha256: treeHash(dist)
  }
}

/** A copy of dist/ at `to` (inside the repository, so that its imports resolve from node_modules). */
export function snapshotDist (root, to) {
  rmSync(to, { recursive: true, force: true })
  cpSync(join(root, 'dist'), to, { recursive: true })
  return to
}

export function buildLine (build) {
  const lib = build.libUncommittedChanges === null
    ? 'lib/ state unknown (no git)'
    : build.libUncommittedChanges.length === 0 ? 'lib/ clean' : `lib/ with uncommitted changes (${build.libUncommittedChanges.join(', ')})`
  return `commit ${build.commit ?? 'unknown'}, ${lib}, dist/ built ${build.builtAt} (sha256 ${build.distSha256.slice(0, 12)})` +
    (build.stale ? ', lib/ NEWER than dist/' : '')
}

export function describeMachine (clock) {
  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus.length,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    totalMemoryBytes: os.totalmem(),
    loadAverageAtStart: os.loadavg(),
    clockTicksPerSecond: clock.ticks,
    clockTicksSource: clock.source
  }
}

export function machineLine (machine) {
  return `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node} ` +
    `(${machine.platform} ${machine.arch}, kernel ${machine.kernel}, ${fixed(machine.totalMemoryBytes / GiB, 1)} GiB RAM, ` +
    `load average ${machine.loadAverageAtStart.map((load) => fixed(load, 2)).join(' ')} at start)`
}

function newest (dir) {
  return Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
    const path = join(dir, entry.name)
    return entry.isDirectory() ? newest(path) : statSync(path).mtimeMs
  }))
}

/** One hash of every file under `dir`, names included: two runs with the same one measured the same code. */
function treeHash (dir) {
  const hash = createHash('sha256')
  const walk = (at) => {
    for (const entry of readdirSync(at, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.js')) hash.update(`${relative(dir, path)}\0`).update(readFileSync(path))
    }
  }
  walk(dir)
  return hash.digest('hex')
}
