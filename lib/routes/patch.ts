import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../errors.js'
import { stopSignalOf } from '../lock/locker.js'
import { NonNegativeInteger, OffsetOctetStream, TusResumable, parseInteger } from '../protocol/headers.js'
import type { Upload } from '../store/store.js'
import { planChecksum } from './checksum.js'
import { finishFinalsOf } from './concat.js'
import { setUploadExpires } from './expiration.js'
import { loadUpload, lockKey, uploadDirectory, type TusContext, type TusRequest, type UploadParams } from './context.js'
import { checkLengthAllowed, receiveBody, stoppedEarly } from './receive-body.js'

export const patchHeaders = Type.Object({
  'tus-resumable': TusResumable,
  'content-type': OffsetOctetStream,
  'upload-offset': NonNegativeInteger,
  'upload-length': Type.Optional(NonNegativeInteger)
})

/**
 * PATCH: appends the body at `Upload-Offset`. Taking the upload's lock ends any
 * request still writing to it; every byte received is kept whatever happens to
 * the connection, and the response says where the upload now stands.
 */
export async function patch (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const clientOffset = parseInteger('upload-offset', request.headers['upload-offset'] as string)
  const length = request.headers['upload-length']
  const declaredLength = length === undefined ? undefined : parseInteger('upload-length', length)
  const checksum = planChecksum(context, request)
  const directory = uploadDirectory(context, request)
  const { uid } = request.params
  const lock = await context.locker.acquire(lockKey(directory, uid))
  const data = context.store.openData(directory, uid, false) // opening beside the load: one round of file calls before the body
  let received
  try {
    let upload = await loadUpload(context, directory, uid)
    if (upload.record.concat?.kind === 'final') throw new errors.FST_TUS_FINAL_UPLOAD()
    if (clientOffset !== upload.offset) {
      reply.header('upload-offset', upload.offset)
      throw new errors.FST_TUS_OFFSET_MISMATCH(clientOffset, upload.offset)
    }
    if (declaredLength !== undefined) upload = await declareLength(context, request, directory, upload, declaredLength)
    received = await receiveBody(context, request, directory, upload, data, stopSignalOf(lock), checksum)
    reply.header('upload-offset', received.upload.offset)
    setUploadExpires(context, reply, received.upload)
    const error = stoppedEarly(context, request, received.upload, received.end)
    if (error !== undefined) throw error
  } finally {
    await data.close()
    await lock.release()
  }
  await finishFinalsOf(context, request, directory, received.upload)
  reply.code(204).send()
}

/** Sets the length of a deferred upload, once; the same length sent again is accepted. */
async function declareLength (context: TusContext, request: TusRequest, directory: string, upload: Upload, length: number): Promise<Upload> {
  const { record, offset } = upload
  if (record.fileSize !== null) {
    if (record.fileSize !== length) throw new errors.FST_TUS_LENGTH_ALREADY_SET(record.fileSize)
    return upload
  }
  if (length < offset) throw new errors.FST_TUS_LENGTH_BELOW_OFFSET(length, offset)
  checkLengthAllowed(context, request, length)
  return { ...upload, record: await context.store.declareLength(directory, record, length) }
}
