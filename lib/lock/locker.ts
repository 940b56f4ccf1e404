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
  readonly stop: StopRequest
  /** Resolves when this holder, and every one before it, has let go. */
  readonly released: Promise<void>
}

/**
 * A newer request's wish that a holder stop. Its AbortSignal is made the first
 * time somebody asks for it: a lock held without a body to stream (a DELETE,
 * a sweep, a draft creation without one) never needs it, and making an
 * AbortController costs about 7 µs of CPU here.
 */
class StopRequest {
  #controller: AbortController | undefined
  #requested = false

  get requested (): boolean {
    return this.#requested
  }

  get signal (): AbortSignal {
    this.#controller ??= new AbortController()
    if (this.#requested) this.#controller.abort()
    return this.#controller.signal
  }

  request (): void {
    this.#requested = true
    this.#controller?.abort()
  }
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
      if (holder.stop.requested) {
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
    return { lock: { get signal () { return stop.signal }, release }, holder, release }
  }
}
