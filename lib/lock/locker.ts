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

export interface Locker {
  acquire (key: string): Promise<Lock>
  /** The lock if nobody holds it; `undefined`, and the holder left alone, if somebody does. */
  tryAcquire (key: string): Promise<Lock | undefined>
}

interface Holder {
  readonly controller: AbortController
  /** Resolves when this holder, and every one before it, has let go. */
  readonly released: Promise<void>
}

/** The locker for uploads served by one process. */
export class MemoryLocker implements Locker {
  readonly #holders = new Map<string, Holder>()

  async acquire (key: string): Promise<Lock> {
    const previous = this.#holders.get(key)
    const { lock, holder, release } = this.#take(key)
    if (previous !== undefined) {
      previous.controller.abort()
      await previous.released
      if (holder.controller.signal.aborted) {
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
    const controller = new AbortController()
    let letGo!: () => void
    const holder: Holder = { controller, released: new Promise((resolve) => { letGo = resolve }) }
    this.#holders.set(key, holder)
    const release = (): void => {
      if (this.#holders.get(key) === holder) this.#holders.delete(key)
      letGo()
    }
    return { lock: { signal: controller.signal, release }, holder, release }
  }
}
