import type { StopSignal } from '../../lock/locker.js'
import type { DataAppender, Upload } from '../../store/store.js'
import { completeIfDone } from '../complete.js'
import type { TusContext, TusRequest } from '../context.js'
import { receiveBody, stoppedEarly } from '../receive-body.js'

/**
 * A body sent with `Upload-Complete: ?1` has ended: an upload of unknown length
 * has it now, and is complete; one whose length says more bytes are due is
 * inconsistent (`undefined`). The caller holds the upload's lock.
 */
export async function completeAsAnnounced (context: TusContext, request: TusRequest, directory: string, upload: Upload): Promise<Upload | undefined> {
  let { record } = upload
  if (record.fileSize === null) record = await context.store.declareLength(directory, record, upload.offset)
  if (record.fileSize !== upload.offset) return undefined
  return await completeIfDone(context, request, directory, { ...upload, record })
}

/**
 * Receives a draft request's body into the upload; with `Upload-Complete: ?1`
 * and the body ended, the upload is complete (`undefined` when it cannot be).
 * The caller closes `data` after.
 */
export async function receiveDraftBody (
  context: TusContext, request: TusRequest, directory: string, upload: Upload, data: DataAppender, signal: StopSignal, complete: boolean
): Promise<Upload | undefined> {
  const received = await receiveBody(context, request, directory, upload, data, signal)
  const error = stoppedEarly(context, request, received.upload, received.end)
  if (error !== undefined) throw error
  if (!complete || received.end !== 'ended') return received.upload
  return await completeAsAnnounced(context, request, directory, received.upload)
}
