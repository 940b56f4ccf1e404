// What Linux says about a process, from /proc.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Clock ticks per second, the unit of the CPU times in /proc/<pid>/stat. */
export function clockTicksPerSecond () {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    if (Number.isInteger(ticks) && ticks > 0) return { ticks, source: 'getconf CLK_TCK' }
  } catch {}
  return { ticks: 100, source: 'assumed (getconf CLK_TCK failed)' }
}

/**
 * The CPU time of a process, all its threads (the libuv pool that writes files
 * included), in clock ticks: fields 14 (utime) and 15 (stime) of
 * /proc/<pid>/stat; and its minor page faults, field 10 (minflt). Field 2, the
 * command name, is in parentheses and may hold spaces, so fields are counted
 * from after its closing parenthesis.
 */
export function processTimes (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields[0] is field 3
  const field = (number) => {
    const value = Number(fields[number - 3])
    if (!Number.isInteger(value)) throw new Error(`unreadable field ${number} of /proc/${pid}/stat: ${stat}`)
    return value
  }
  return { user: field(14), system: field(15), minorFaults: field(10) }
}

/** A memory figure of /proc/<pid>/status in bytes: 'VmHWM' (peak resident set) or 'VmRSS'. */
export function memoryBytes (pid, key) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (match === null) throw new Error(`no ${key} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/**
 * The busy CPU time of the whole machine, all cores, in clock ticks: user,
 * nice, system, irq and softirq of the first line of /proc/stat; and steal,
 * the time the hypervisor gave to others.
 */
export function machineTimes () {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, , , irq, softirq, steal = 0] = fields
  return { busy: user + nice + system + irq + softirq, steal }
}
