import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../../errors.js'
import { stopSignalOf } from '../../lock/locker.js'
import { SfBoolean, SfOffset, contentDispositionFileName, isTrue, problems, sfInteger, type DraftVersion } from '../../protocol/draft.js'
import { MetadataHeader, announcedBodyLength } from '../../protocol/headers.js'
import type { Upload } from '../../store/store.js'
import { completeIfDone } from '../complete.js'
import { lockKey, uploadDirectory, type TusContext, type TusRequest } from '../context.js'
import { location, newRecord } from '../new-upload.js'
import { checkLengthAllowed } from '../receive-body.js'
import { completeAsAnnounced, receiveDraftBody } from './complete.js'
import { limitsOf, sendProblem, sendUploadResumptionSupported, setDraftState } from './respond.js'

export const draftCreateHeaders = Type.Object({
  'upload-complete': SfBoolean,
  'upload-length': Type.Optional(SfOffset),
  'upload-metadata': Type.Optional(MetadataHeader)
})

/**
 * Upload creation by the draft: any content is the start of the upload
 * (`Upload-Complete: ?1` when it is all of it). The upload's URL goes out in a
 * 104 before the body is read, and again in the 201.
 */
export async function draftCreate (version: DraftVersion, context: TusContext, request: TusRequest, reply: FastifyReply): Promise<void> {
  const { headers } = request
  if (headers['upload-concat'] !== undefined) throw new errors.FST_TUS_INVALID_CONCAT('it is no part of the resumable-upload draft')
  const complete = isTrue(headers['upload-complete'] as string)
  const declared = headers['upload-length'] === undefined ? null : sfInteger(headers['upload-length'])
  const announced = announcedBodyLength(headers)
  const fileSize = complete && announced !== undefined ? announced : declared
  if (declared !== null && fileSize !== declared) return sendProblem(reply.header('upload-complete', '?0'), 400, problems.inconsistentLength())
  if (fileSize !== null) checkLengthAllowed(context, request, fileSize)
  const record = await newRecord(context, request, fileSize, { fileName: contentDispositionFileName(headers['content-disposition']) })
  const directory = uploadDirectory(context, request)
  const lock = await context.locker.acquire(lockKey(directory, record.uid))
  const data = context.store.openData(directory, record.uid, true)
  try {
    await context.store.create(directory, record)
    const url = location(context, request, record.uid)
    reply.header('location', url)
    const limit = limitsOf(context, request, version)
    sendUploadResumptionSupported(request, reply, {
      location: url,
      'upload-draft-interop-version': version,
      ...(limit === undefined ? {} : { 'upload-limit': limit })
    })
    const created: Upload = { record, offset: 0, lastActivity: Date.now() }
    const upload = request.body !== undefined
      ? await receiveDraftBody(context, request, directory, created, data, stopSignalOf(lock), complete)
      : complete ? await completeAsAnnounced(context, request, directory, created) : await completeIfDone(context, request, directory, created)
    if (upload === undefined) return sendProblem(reply.header('upload-complete', '?0'), 400, problems.inconsistentLength())
    setDraftState(context, request, reply, version, upload)
  } finally {
    await data.close()
    await lock.release()
  }
  reply.code(201).send()
}
