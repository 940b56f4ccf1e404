import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../../errors.js'
import { stopSignalOf } from '../../lock/locker.js'
import { PartialUploadType, SfBoolean, SfOffset, isTrue, problems, sfInteger, type DraftVersion } from '../../protocol/draft.js'
import { announcedBodyLength } from '../../protocol/headers.js'
import type { Upload } from '../../store/store.js'
import { finishFinalsOf } from '../concat.js'
import { loadUpload, lockKey, uploadDirectory, type TusContext, type TusRequest, type UploadParams } from '../context.js'
import { checkLengthAllowed } from '../receive-body.js'
import { receiveDraftBody } from './complete.js'
import { sendProblem, setDraftState } from './respond.js'

const appendFields = {
  'upload-offset': SfOffset,
  'upload-complete': SfBoolean,
  'upload-length': Type.Optional(SfOffset)
}

/** Version 5 has no media type for appends; 6 and 8 want `application/partial-upload` (415 otherwise). */
export const draftAppendHeaders = (version: DraftVersion): ReturnType<typeof Type.Object> => version === '5'
  ? Type.Object(appendFields)
  : Type.Object({ 'content-type': PartialUploadType, ...appendFields })

/**
 * Upload append by the draft: the body goes at `Upload-Offset`; `Upload-Complete: ?1`
 * says it is the last of the upload. As tus-js-client may say `?0` on its last
 * chunk, an upload whose known length is reached completes either way.
 */
export async function draftAppend (version: DraftVersion, context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const { headers } = request
  const clientOffset = sfInteger(headers['upload-offset'] as string)
  const complete = isTrue(headers['upload-complete'] as string)
  const announced = announcedBodyLength(headers)
  const directory = uploadDirectory(context, request)
  const { uid } = request.params
  const lock = await context.locker.acquire(lockKey(directory, uid))
  const data = context.store.openData(directory, uid, false) // opening beside the load: one round of file calls before the body
  let upload: Upload
  try {
    upload = await loadUpload(context, directory, uid)
    if (upload.record.concat?.kind === 'final') throw new errors.FST_TUS_FINAL_UPLOAD()
    if (upload.record.completed) {
      setDraftState(context, request, reply, version, upload)
      // version 8 lets a repeated last request be answered as the first was
      if (version === '8' && clientOffset === upload.offset && announced === 0) reply.code(200).send()
      else sendProblem(reply, 400, problems.completedUpload())
      return
    }
    if (clientOffset !== upload.offset) {
      reply.header('upload-offset', upload.offset).header('upload-complete', '?0')
      if (version === '5') throw new errors.FST_TUS_OFFSET_MISMATCH(clientOffset, upload.offset)
      return sendProblem(reply, 409, problems.mismatchingOffset(upload.offset, clientOffset))
    }
    const declared = headers['upload-length'] === undefined ? undefined : sfInteger(headers['upload-length'])
    const length = complete && announced !== undefined ? upload.offset + announced : declared
    if (length !== undefined) {
      const consistent = await settleLength(context, request, directory, upload, length, declared)
      if (consistent === undefined) return sendProblem(reply.header('upload-complete', '?0'), 400, problems.inconsistentLength())
      upload = consistent
    }
    const received = await receiveDraftBody(context, request, directory, upload, data, stopSignalOf(lock), complete)
    if (received === undefined) return sendProblem(reply.header('upload-complete', '?0'), 400, problems.inconsistentLength())
    upload = received
    setDraftState(context, request, reply, version, upload)
  } finally {
    await data.close()
    await lock.release()
  }
  await finishFinalsOf(context, request, directory, upload)
  reply.code(version === '8' ? (upload.record.completed ? 200 : 204) : 201).send()
}

/**
 * The length an append makes known (from `Upload-Length`, or from a complete
 * body's `Content-Length`), held against what the upload knows already: the
 * same one, or the first one, within the maximum size. `undefined` when the
 * values disagree, or when a second source in the same request does.
 */
async function settleLength (
  context: TusContext, request: TusRequest, directory: string, upload: Upload, length: number, declared: number | undefined
): Promise<Upload | undefined> {
  const { record, offset } = upload
  if ((declared !== undefined && declared !== length) || length < offset) return undefined
  if (record.fileSize !== null) return record.fileSize === length ? upload : undefined
  checkLengthAllowed(context, request, length)
  return { ...upload, record: await context.store.declareLength(directory, record, length) }
}
