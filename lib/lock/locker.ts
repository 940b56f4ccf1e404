/**
 * One writer per upload. Taking a lock that is held asks the holder to stop
 * (its `signal` aborts) and waits only for it to let go, so a new request never
 * waits on a dead connection. A waiter that is itself overtaken by a newer
 * request receives its lock already aborted and must give it back at once.
 */
export interface Lock {
  /** Aborts when a newer request wants this upload. */
  readonly signal: AbortSignal
  release (): void
}

export interface Locker {
  acquire (key: string): Promise<Lock>
  /** The lock if nobody holds it; `undefined`, and the holder left alone, if somebody does. */
  tryAcquire (key: string): Lock | undefined
}

interface Holder {
  readonly controller: AbortController
  readonly released: Promise<void>
}

/** The locker for uploads served by one process. */
export class MemoryLocker implements Locker {
  readonly #holders = new Map<string, Holder>()

  async acquire (key: string): Promise<Lock> {
    const previous = this.#holders.get(key)
    const lock = this.#take(key)
    if (previous !== undefined) {
      previous.controller.abort()
      await previous.released
    }
    return lock
  }

  tryAcquire (key: string): Lock | undefined {
    return this.#holders.has(key) ? undefined : this.#take(key)
  }

  /** Makes a new holder the newest for `key`; its lock is good once the previous holder lets go. */
  #take (key: string): Lock {
    const controller = new AbortController()
    let release!: () => void
    const holder: Holder = { controller, released: new Promise((resolve) => { release = resolve }) }
    this.#holders.set(key, holder)
    return {
      signal: controller.signal,
      release: () => {
        if (this.#holders.get(key) === holder) this.#holders.delete(key)
        release()
      }
    }
  }
}
