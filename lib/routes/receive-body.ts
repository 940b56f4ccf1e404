import type { Readable } from 'node:stream'
import { errors } from '../errors.js'
import type { StopSignal } from '../lock/locker.js'
import { announcedBodyLength } from '../protocol/headers.js'
import type { AppendEnd } from '../store/append-stream.js'
import type { DataAppender, Upload } from '../store/store.js'
import { checksumProblem, type ChecksumPlan } from './checksum.js'
import { completeIfDone } from './complete.js'
import type { TusContext, TusRequest } from './context.js'
import { maxSizeOf } from './max-size.js'
import { progressReporter, type ProgressReporter } from './progress.js'

/**
 * Appends a request body (PATCH, or POST with creation-with-upload) to an upload
 * at its current offset, and completes the upload when its last byte arrives.
 * The caller holds the lock whose `signal` this takes, and closes `data`
 * (UploadStore.openData) after. A body that announces more bytes than the
 * upload can take is refused before a byte is written; a body that turns out
 * longer is cut at the limit (`end: 'limit'`).
 *
 * With a checksum, the body counts only if it arrived whole and matches: until
 * then the record marks the bytes as unverified (so a crash cannot make them
 * count), and a body that stopped early or does not match is cut off again.
 */
export async function receiveBody (
  context: TusContext, request: TusRequest, directory: string, upload: Upload, data: DataAppender, signal: StopSignal, checksum?: ChecksumPlan
): Promise<{ upload: Upload, end: AppendEnd }> {
  const { offset } = upload
  let { record } = upload
  checkBodyFits(context, request, upload)
  if (record.completed) return { upload, end: announcedBodyLength(request.headers) === 0 ? 'ended' : 'limit' }
  if (record.unverifiedFrom !== undefined) record = await context.store.settleUnverified(directory, record, offset)
  if (checksum !== undefined) record = await context.store.markUnverified(directory, record, offset)
  const body = request.body as Readable | undefined
  const progress = progressReporter(context, request, upload)
  // a request without a body (a draft version 5 append may have no Content-Type) appends nothing
  const { written, end } = body === undefined
    ? { written: 0, end: 'ended' as const }
    : await data.append(body, {
      limit: roomLeft(context, request, upload),
      signals: [signal, context.closing],
      idleTimeout: context.options.idleTimeout,
      observe: observer(checksum, progress)
    })
  context.store.appendedTo(directory, record, offset + written)
  const problem = end === 'ended' ? checksumProblem(context, request, checksum) : undefined
  const kept = problem !== undefined || (checksum !== undefined && end !== 'ended') ? 0 : written
  // the data holds offset + written bytes now: a body that matched needs no cut
  if (checksum !== undefined || kept !== written) record = await context.store.settleUnverified(directory, record, offset + kept, offset + written)
  const lastActivity = kept > 0 ? Date.now() : upload.lastActivity
  const received: Upload = { record, offset: offset + kept, lastActivity }
  progress?.finish(received)
  if (problem !== undefined) throw problem
  return { upload: await completeIfDone(context, request, directory, received), end }
}

/** What sees each kept chunk: the checksum's digests, the progress reporter, both or neither. */
function observer (checksum: ChecksumPlan | undefined, progress: ProgressReporter | undefined): ((chunk: Buffer) => void) | undefined {
  if (checksum === undefined || progress === undefined) return checksum?.digests.update ?? progress?.observe
  return (chunk) => {
    checksum.digests.update(chunk)
    progress.observe(chunk)
  }
}

/** The largest length an upload of this request may reach. */
function maximumSize (context: TusContext, request: TusRequest): number {
  return maxSizeOf(context, request) ?? Number.MAX_SAFE_INTEGER
}

/** Refuses a length above the maximum size (413). */
export function checkLengthAllowed (context: TusContext, request: TusRequest, length: number): void {
  if (length > maximumSize(context, request)) {
    throw new errors.FST_TUS_TOO_LARGE(`Upload-Length ${length} passes the maximum size of ${maximumSize(context, request)} bytes`)
  }
}

/** How many more bytes an upload may take: up to its length, or up to the maximum while deferred. */
function roomLeft (context: TusContext, request: TusRequest, { record, offset }: Upload): number {
  return (record.fileSize ?? maximumSize(context, request)) - offset
}

/** Refuses a body whose announced length would pass what the upload can take, before a byte is written. */
export function checkBodyFits (context: TusContext, request: TusRequest, upload: Upload): void {
  const announced = announcedBodyLength(request.headers)
  if (announced !== undefined && announced > roomLeft(context, request, upload)) throw tooLarge(context, request, upload)
}

/** The error of a body that stopped before its end, if any. */
export function stoppedEarly (context: TusContext, request: TusRequest, upload: Upload, end: AppendEnd): Error | undefined {
  if (end === 'limit') return tooLarge(context, request, upload)
  if (end === 'idle') return new errors.FST_TUS_IDLE_TIMEOUT(context.options.idleTimeout)
  if (end === 'interrupted') return context.closing.aborted ? new errors.FST_TUS_SHUTTING_DOWN() : new errors.FST_TUS_INTERRUPTED()
  return undefined
}

function tooLarge (context: TusContext, request: TusRequest, { record }: Upload): Error {
  return record.fileSize === null
    ? new errors.FST_TUS_TOO_LARGE(`The upload would pass the maximum size of ${maximumSize(context, request)} bytes`)
    : new errors.FST_TUS_TOO_LARGE(`The body would pass Upload-Length ${record.fileSize}`)
}
