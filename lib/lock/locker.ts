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
    const controller = new AbortController()
    let release!: () => void
    const holder: Holder = { controller, released: new Promise((resolve) => { release = resolve }) }
    this.#holders.set(key, holder)
    if (previous !== undefined) {
      previous.controller.abort()
      await previous.released
    }
    return {
      signal: controller.signal,
      release: () => {
        if (this.#holders.get(key) === holder) this.#holders.delete(key)
        release()
      }
    }
  }
}
