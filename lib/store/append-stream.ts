import { writev } from 'node:fs'
import type { Readable } from 'node:stream'
import type { StopSignal } from '../lock/locker.js'

/**
 * Why an append stopped: the body `ended`; it held more than the limit and was
 * cut there (`limit`); the connection `broke`; a newer request for the upload
 * (or the server closing) `interrupted` it; or no byte came for the idle timeout
 * (`idle`). In every case all bytes received up to that point are on disk.
 */
export type AppendEnd = 'ended' | 'limit' | 'broke' | 'interrupted' | 'idle'

export interface AppendResult {
  readonly written: number
  readonly end: AppendEnd
}

export interface AppendOptions {
  /** The most bytes to write; more are cut off (`limit`). */
  readonly limit: number
  /**
   * Stops the append when any of them aborts (`interrupted`): a listener on
   * each while it runs, nothing left on them after (AbortSignal.any would leave
   * a reference on every source for good, a leak on a signal that lives as
   * long as the server).
   */
  readonly signals: readonly StopSignal[]
  /** Stops the append after this many milliseconds without a byte (`idle`). */
  readonly idleTimeout: number
  /** Sees each chunk as it is kept (a checksum, progress). */
  readonly observe?: ((chunk: Buffer) => void) | undefined
}

/** A write starts once this much is pending, or GATHER_MS after the first pending byte came. */
const BATCH_BYTES = 1024 * 1024
const GATHER_MS = 50
/** Socket chunks held while a write is in flight before the socket is paused. */
const MAX_PENDING_BYTES = 2 * BATCH_BYTES

/**
 * Streams `source` to the end of the file behind `fd` without a stream pipeline:
 * socket chunks are gathered into batches of about BATCH_BYTES for `writev` (a
 * slow client's bytes wait at most GATHER_MS for more), and chunks arriving
 * while a write is in flight join the next batch. Memory stays under
 * MAX_PENDING_BYTES plus the batch in flight and the socket's own buffer,
 * whatever the body size.
 */
export function appendStream (fd: number, source: Readable, { limit, signals, idleTimeout, observe }: AppendOptions): Promise<AppendResult> {
  return new Promise((resolve, reject) => {
    let pending: Buffer[] = []
    let pendingBytes = 0
    let received = 0
    let written = 0
    let writing = false
    let end: AppendEnd | undefined
    let lastData = Date.now()
    let gathering: NodeJS.Timeout | undefined

    const onData = (chunk: Buffer): void => {
      lastData = Date.now()
      const room = limit - received
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
      received += kept.length
      observe?.(kept)
      pending.push(kept)
      pendingBytes += kept.length
      if (kept !== chunk) stop('limit')
      else if (writing) {
        if (pendingBytes >= MAX_PENDING_BYTES) source.pause()
      } else if (pendingBytes >= BATCH_BYTES) flush()
      else gather()
    }
    const flushGathered = (): void => {
      gathering = undefined
      if (!writing && end === undefined && pending.length > 0) flush()
    }
    const onEnd = (): void => stop('ended')
    const onBroken = (): void => {
      // a connection that broke may leave bytes it delivered in the stream's buffer: they are kept too
      source.off('data', onData)
      for (let chunk: Buffer | null = source.read(); chunk !== null; chunk = source.read()) {
        onData(chunk)
        if (end !== undefined) return
      }
      stop('broke')
    }
    const onInterrupt = (): void => stop('interrupted')
    // the idle clock runs only while the append waits for the client, not while it waits for the disk
    const onIdleCheck = (): void => {
      const waited = writing ? 0 : Date.now() - lastData
      if (waited >= idleTimeout) stop('idle')
      else idle = setTimeout(onIdleCheck, idleTimeout - waited)
    }
    source.on('data', onData)
    source.once('end', onEnd)
    source.once('error', onBroken)
    source.once('close', onBroken)
    for (const signal of signals) signal.addEventListener('abort', onInterrupt, { once: true })
    let idle = setTimeout(onIdleCheck, idleTimeout)
    if (signals.some((signal) => signal.aborted)) stop('interrupted')
    else if (source.destroyed) onBroken()

    function stop (reason: AppendEnd): void {
      if (end !== undefined) return
      end = reason
      clearTimeout(idle)
      clearTimeout(gathering)
      source.off('data', onData)
      source.off('end', onEnd)
      source.off('error', onBroken)
      source.off('close', onBroken)
      for (const signal of signals) signal.removeEventListener('abort', onInterrupt)
      source.pause()
      if (!writing) settle()
    }

    /** What follows a finished write, or the stop: the next batch, waiting to gather one, or the result. */
    function settle (): void {
      if (end === undefined && pendingBytes < BATCH_BYTES) gather()
      else if (pending.length > 0) flush()
      else resolve({ written, end: end as AppendEnd })
    }

    function gather (): void {
      if (pending.length > 0) gathering ??= setTimeout(flushGathered, GATHER_MS)
    }

    function flush (): void {
      const batch = pending
      const batchBytes = pendingBytes
      pending = []
      pendingBytes = 0
      writing = true
      writev(fd, batch, (error, bytes) => {
        if (error !== null) {
          stop('broke')
          reject(error)
          return
        }
        written += bytes
        pending = unwritten(batch, bytes).concat(pending) // a short write leaves its rest first in line
        pendingBytes += batchBytes - bytes
        writing = false
        lastData = Date.now() // ready for more: the client's idle time starts now
        if (end === undefined) source.resume()
        settle()
      })
    }
  })
}

/** The part of `batch` that a write of `bytes` did not cover. */
export function unwritten (batch: Buffer[], bytes: number): Buffer[] {
  let skipped = 0
  for (let index = 0; index < batch.length; index++) {
    const buffer = batch[index] as Buffer
    if (skipped + buffer.length > bytes) {
      return [buffer.subarray(bytes - skipped), ...batch.slice(index + 1)]
    }
    skipped += buffer.length
  }
  return []
}
