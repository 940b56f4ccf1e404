import { stat as statCallback, utimes } from 'node:fs'
import { rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { errors } from '../errors.js'
import { mkdir, rename, rmdir, stat, unlink, writeText } from '../store/file-calls.js'
import { readText } from '../store/read-text.js'
import { nanoid } from 'nanoid'
import { MemoryLocker, stopSignalOf, type Lock, type Locker } from './locker.js'

export interface FileLockerOptions {
  /** How often a holder looks for a request to hand over, and a waiter tries again (ms). Default 25. */
  readonly pollInterval?: number
  /** How often a holder marks its lock as alive (ms). Default 1000. */
  readonly heartbeat?: number
  /** A lock not marked alive for this long belongs to a holder that is gone (ms). Default 10000. */
  readonly staleAfter?: number
}

interface Owner {
  readonly host: string
  readonly pid: number
  readonly token: string
}

/**
 * One writer per upload across processes and hosts that share the upload
 * directory (a local disk, or NFS, EFS, CephFS). A lock is a directory, made
 * with `mkdir` (atomic on every file system, NFS included); no `flock`, no
 * `fs.watch`. Inside it, `owner` names the holder.
 *
 * - Handover: a waiter leaves a `wanted` file in the lock; the holder looks for
 *   it every `pollInterval` ms, stops its request, and lets go. So a new request
 *   takes over from one whose client went away within about `pollInterval`.
 * - Dead holders: the holder touches its lock every `heartbeat` ms. A lock
 *   untouched for `staleAfter` ms is taken over; so is, at once, a lock of a
 *   process of this host that no longer exists.
 * - Within one process, a MemoryLocker comes first, so local handover needs no
 *   file at all. A lock for an upload whose directory does not exist yet (a
 *   creation) is the memory lock alone: nobody else can know that upload.
 *
 * Limits: on NFS, attribute caching can hide a `wanted` file or a heartbeat
 * for the cache's lifetime (mount with `lookupcache=positive` and a short
 * `actimeo` for prompt handover); clocks of the hosts must roughly agree for
 * `staleAfter` to hold.
 */
export class FileLocker implements Locker {
  readonly #memory = new MemoryLocker()
  readonly #pollInterval: number
  readonly #heartbeat: number
  readonly #staleAfter: number
  readonly #host = hostname()
  /** The locks this locker holds, all looked at by one timer while there are any. */
  readonly #held = new Set<HeldLock>()
  #watch: NodeJS.Timeout | undefined
  #lastBeat = 0

  constructor ({ pollInterval = 25, heartbeat = 1000, staleAfter = 10_000 }: FileLockerOptions = {}) {
    this.#pollInterval = pollInterval
    this.#heartbeat = heartbeat
    this.#staleAfter = staleAfter
  }

  async acquire (key: string): Promise<Lock> {
    const local = await this.#memory.acquire(key)
    const owner: Owner = { host: this.#host, pid: process.pid, token: nanoid() }
    try {
      for (;;) {
        const taken = await this.#tryTake(key, owner)
        if (taken === 'taken') return this.#hold(key, owner, local)
        if (taken === 'no-directory') return local
        // asked again on every try: the holder it asked may have gone, and another come
        await writeText(join(key, 'wanted'), owner.token).catch(() => {})
        await sleep(this.#pollInterval)
        if (stopSignalOf(local).aborted) throw new errors.FST_TUS_INTERRUPTED()
      }
    } catch (error) {
      local.release()
      throw error
    }
  }

  async tryAcquire (key: string): Promise<Lock | undefined> {
    const local = await this.#memory.tryAcquire(key)
    if (local === undefined) return undefined
    const owner: Owner = { host: this.#host, pid: process.pid, token: nanoid() }
    // a second try, for a lock the first found stale and removed
    for (let attempt = 0; attempt < 2; attempt++) {
      const taken = await this.#tryTake(key, owner)
      if (taken === 'taken') return this.#hold(key, owner, local)
      if (taken === 'no-directory') return local
    }
    local.release()
    return undefined
  }

  /** Makes the lock directory, or takes it over from a holder that is gone. */
  async #tryTake (key: string, owner: Owner): Promise<'taken' | 'held' | 'no-directory'> {
    try {
      await mkdir(key)
    } catch (error) {
      const { code } = error as NodeJS.ErrnoException
      if (code === 'ENOENT') return 'no-directory'
      if (code !== 'EEXIST') throw error
      const stale = await this.#staleOwner(key)
      if (stale === undefined) return 'held'
      await removeStale(key, stale, owner)
      return 'held'
    }
    // named through a rename: a holder killed meanwhile leaves a nameless lock, never a half-written name
    await writeText(join(key, `owner.${owner.token}`), JSON.stringify(owner))
    await rename(join(key, `owner.${owner.token}`), join(key, 'owner'))
    return 'taken'
  }

  /**
   * The token of a lock's holder if the holder is gone (`''` for a lock whose
   * holder died before it wrote its name), `undefined` while it lives.
   */
  async #staleOwner (key: string): Promise<string | undefined> {
    const [stats, holder] = await Promise.all([stat(key).catch(() => undefined), readOwner(key)])
    if (stats === undefined) return undefined
    const age = Date.now() - stats.mtimeMs
    if (holder === undefined) return age > NAMELESS_GRACE ? '' : undefined
    if (age > this.#staleAfter || (holder.host === this.#host && !isAlive(holder.pid))) return holder.token
    return undefined
  }

  /** The lock once its directory is ours: watched for a waiter, kept alive, removed on release. */
  #hold (key: string, owner: Owner, local: Lock): Lock {
    // one signal for both reasons to stop: a waiter here (the memory lock's) or elsewhere (`wanted`)
    const handover = new AbortController()
    const onLocalAbort = (): void => { handover.abort() }
    const localStop = stopSignalOf(local)
    if (localStop.aborted) handover.abort()
    else localStop.addEventListener('abort', onLocalAbort, { once: true })
    const held: HeldLock = { key, wanted: join(key, 'wanted'), handover }
    this.#held.add(held)
    if (this.#watch === undefined) {
      this.#lastBeat = Date.now()
      this.#watch = setInterval(() => { this.#look() }, this.#pollInterval).unref()
    }
    return {
      signal: handover.signal,
      release: async () => {
        this.#held.delete(held)
        if (this.#held.size === 0) {
          clearInterval(this.#watch)
          this.#watch = undefined
        }
        localStop.removeEventListener('abort', onLocalAbort)
        // a lock that cannot be removed stays behind as a stale one: the next taker removes it
        await release(key, owner).catch(() => {})
        local.release()
      }
    }
  }

  /**
   * One look at every lock held: a `wanted` file asks its holder to stop, and
   * every `heartbeat` ms each lock is marked alive. One timer for all, and a
   * callback `stat` per lock: a timer and an fs/promises `stat` per lock cost
   * two to four times the CPU (1,000 locks held in one process: 0.68-0.76
   * CPU-s per second against 0.17-0.34).
   */
  #look (): void {
    const now = Date.now()
    const beat = now - this.#lastBeat >= this.#heartbeat ? new Date(now) : undefined
    if (beat !== undefined) this.#lastBeat = now
    for (const held of this.#held) {
      if (!held.handover.signal.aborted) statCallback(held.wanted, (error) => { if (error === null) held.handover.abort() })
      if (beat !== undefined) utimes(held.key, beat, beat, ignore)
    }
  }
}

interface HeldLock {
  readonly key: string
  /** Where a waiter of another process asks for the lock. */
  readonly wanted: string
  readonly handover: AbortController
}

const ignore = (): void => {}

/** A lock older than this without an owner belongs to a holder that died between `mkdir` and naming itself. */
const NAMELESS_GRACE = 2000

/** The holder named in a lock; `undefined` for none, or for a name that cannot be read (as nameless). */
async function readOwner (key: string): Promise<Owner | undefined> {
  const text = await readText(join(key, 'owner')).catch(() => '')
  try {
    return JSON.parse(text) as Owner
  } catch {
    return undefined
  }
}

/** Removes the lock directory if it is still ours (a holder taken for gone may find it taken over). */
async function release (key: string, owner: Owner): Promise<void> {
  if ((await readOwner(key))?.token !== owner.token) return
  const aside = `${key}.released-${owner.token}`
  await rename(key, aside)
  await removeAside(aside)
}

/**
 * Moves a stale lock aside (a rename is atomic: of two waiters only one moves
 * it) and removes it. Should a live lock have been made in its place between
 * the look and the move, it is moved back.
 */
export async function removeStale (key: string, staleToken: string, owner: Owner): Promise<void> {
  const aside = `${key}.stale-${owner.token}`
  if (!await rename(key, aside).then(() => true, () => false)) return
  if (((await readOwner(aside))?.token ?? '') !== staleToken) {
    await rename(aside, key).catch(() => {})
    return
  }
  await removeAside(aside)
}

/**
 * Removes a lock moved aside: its name, then the directory; one that holds
 * more (a `wanted` file, a name its holder died writing) is removed whole.
 * Two calls where a recursive removal made ten here (strace).
 */
async function removeAside (aside: string): Promise<void> {
  await unlink(join(aside, 'owner')).catch(() => {})
  await rmdir(aside).catch(() => rm(aside, { recursive: true, force: true }))
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
