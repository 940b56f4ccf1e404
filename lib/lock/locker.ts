import { errors } from '../errors.js'

/**
 * One writer per upload. Taking a lock that is held asks the holder to stop
 * (its `signal` aborts) and waits only for it to let go, so a new request never
 * waits on a dead connection. A waiter that is itself overtaken by a newer
 * request never gets the lock: its `acquire` rejects with FST_TUS_INTERRUPTED.
 */
export interface Lock {
  /** Aborts when a newer request wants this upload. */
  readonly signal: AbortSignal
  /** Lets go; resolves once another process can take the lock (a file locker removes its file). */
  release (): void | Promise<void>
}

/**
 * What a body being written listens to for the wish that it stop: a lock's
 * AbortSignal, or the memory lock's own request to stop (stopSignalOf), which
 * is heard the same way without an AbortController.
 */
export interface StopSignal {
  readonly aborted: boolean
  addEventListener (type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener (type: 'abort', listener: () => void): void
}

export interface Locker {
  acquire (key: string): Promise<Lock>
  /** The lock if nobody holds it; `undefined`, and the holder left alone, if somebody does. */
  tryAcquire (key: string): Promise<Lock | undefined>
}

interface Holder {
  readonly stop: StopRequest
  /** Resolves when this holder, and every one before it, has let go. */
  readonly released: Promise<void>
}

/**
 * A newer request's wish that a holder stop. Its AbortSignal is made the first
 * time somebody asks for it: making an AbortController costs about 7 µs of CPU
 * here, and listening on its signal more, so a body being written listens to
 * this instead (stopSignalOf), and a lock held without a body (a DELETE, a
 * sweep, a draft creation without one) never needs one. A listener is called
 * once, when the wish comes, or never.
 */
class StopRequest implements StopSignal {
  #controller: AbortController | undefined
  #requested = false
  #listeners: Set<() => void> | undefined

  get aborted (): boolean {
    return this.#requested
  }

  get signal (): AbortSignal {
    this.#controller ??= new AbortController()
    if (this.#requested) this.#controller.abort()
    return this.#controller.signal
  }

  addEventListener (_type: 'abort', listener: () => void): void {
    (this.#listeners ??= new Set()).add(listener)
  }

  removeEventListener (_type: 'abort', listener: () => void): void {
    this.#listeners?.delete(listener)
  }

  request (): void {
    this.#requested = true
    this.#controller?.abort()
    const listeners = this.#listeners
    if (listeners === undefined) return
    // each called once, in the order added; one that an earlier one removes is not called
    for (const listener of listeners) {
      listeners.delete(listener)
      listener()
    }
  }
}

/** A lock of a MemoryLocker: its holder is asked to stop through `stop`. */
class MemoryLock implements Lock {
  readonly stop: StopRequest
  readonly release: () => void

  constructor (stop: StopRequest, release: () => void) {
    this.stop = stop
    this.release = release
  }

  get signal (): AbortSignal {
    return this.stop.signal
  }
}

/** How a body written under `lock` hears that it should stop: without an AbortController for a memory lock. */
export function stopSignalOf (lock: Lock): StopSignal {
  return lock instanceof MemoryLock ? lock.stop : lock.signal
}

/** The locker for uploads served by one process. */
export class MemoryLocker implements Locker {
  readonly #holders = new Map<string, Holder>()

  async acquire (key: string): Promise<Lock> {
    const previous = this.#holders.get(key)
    const { lock, holder, release } = this.#take(key)
    if (previous !== undefined) {
      previous.stop.request()
      await previous.released
      if (holder.stop.aborted) {
        release()
        throw new errors.FST_TUS_INTERRUPTED()
      }
    }
    return lock
  }

  async tryAcquire (key: string): Promise<Lock | undefined> {
    return this.#holders.has(key) ? undefined : this.#take(key).lock
  }

  /** Makes a new holder the newest for `key`; its lock is good once the previous holder lets go. */
  #take (key: string): { lock: Lock, holder: Holder, release: () => void } {
    const stop = new StopRequest()
    let letGo!: () => void
    const holder: Holder = { stop, released: new Promise((resolve) => { letGo = resolve }) }
    this.#holders.set(key, holder)
    const release = (): void => {
      if (this.#holders.get(key) === holder) this.#holders.delete(key)
      letGo()
    }
    return { lock: new MemoryLock(stop, release), holder, release }
  }
}
