import type { Readable } from 'node:stream'
import { errors } from '../errors.js'
import { announcedBodyLength } from '../protocol/headers.js'
import type { AppendEnd } from '../store/append-stream.js'
import type { Upload } from '../store/store.js'
import { completeIfDone } from './complete.js'
import type { TusContext, TusRequest } from './context.js'

/**
 * Appends a request body (PATCH, or POST with creation-with-upload) to an upload
 * at its current offset, and completes the upload when its last byte arrives.
 * The caller holds the lock whose `signal` this takes. A body that announces
 * more bytes than the upload can take is refused before a byte is written;
 * a body that turns out longer is cut at the limit (`end: 'limit'`).
 */
export async function receiveBody (
  context: TusContext, request: TusRequest, directory: string, upload: Upload, signal: AbortSignal
): Promise<{ upload: Upload, end: AppendEnd }> {
  const { record, offset } = upload
  checkBodyFits(context, request, upload)
  if (record.completed) return { upload, end: announcedBodyLength(request.headers) === 0 ? 'ended' : 'limit' }
  const { written, end } = await context.store.append(directory, record.uid, request.body as Readable, roomLeft(context, upload), signal)
  return { upload: await completeIfDone(context, request, directory, { record, offset: offset + written }), end }
}

/** The largest length an upload may reach. */
export function maximumSize (context: TusContext): number {
  return context.options.maxSize ?? Number.MAX_SAFE_INTEGER
}

/** Refuses a length above the maximum size (413). */
export function checkLengthAllowed (context: TusContext, length: number): void {
  if (length > maximumSize(context)) {
    throw new errors.FST_TUS_TOO_LARGE(`Upload-Length ${length} passes the maximum size of ${maximumSize(context)} bytes`)
  }
}

/** How many more bytes an upload may take: up to its length, or up to the maximum while deferred. */
function roomLeft (context: TusContext, { record, offset }: Upload): number {
  return (record.fileSize ?? maximumSize(context)) - offset
}

/** Refuses a body whose announced length would pass what the upload can take, before a byte is written. */
export function checkBodyFits (context: TusContext, request: TusRequest, upload: Upload): void {
  const announced = announcedBodyLength(request.headers)
  if (announced !== undefined && announced > roomLeft(context, upload)) throw tooLarge(context, upload)
}

/** The error of a body that stopped before its end, if any. */
export function stoppedEarly (context: TusContext, upload: Upload, end: AppendEnd): Error | undefined {
  if (end === 'limit') return tooLarge(context, upload)
  if (end === 'interrupted') return new errors.FST_TUS_INTERRUPTED()
  return undefined
}

function tooLarge (context: TusContext, { record }: Upload): Error {
  return record.fileSize === null
    ? new errors.FST_TUS_TOO_LARGE(`The upload would pass the maximum size of ${maximumSize(context)} bytes`)
    : new errors.FST_TUS_TOO_LARGE(`The body would pass Upload-Length ${record.fileSize}`)
}
