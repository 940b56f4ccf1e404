import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { TusResumable } from '../protocol/headers.js'
import type { Upload } from '../store/store.js'
import { completeIfDone } from './complete.js'
import { assembleFinal, finishFinalsOf } from './concat.js'
import { setUploadExpires } from './expiration.js'
import { loadUpload, lockKey, peekUpload, uploadDirectory, type TusContext, type TusRequest, type UploadParams } from './context.js'

export const headHeaders = Type.Object({ 'tus-resumable': TusResumable })

/**
 * HEAD: where an upload stands. A completed upload keeps answering with its full
 * offset; a final upload has no offset of its own until it is assembled.
 */
export async function head (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const upload = await currentUpload(context, request)
  const { record, offset } = upload
  reply.header('cache-control', 'no-store')
  if (record.concat?.kind !== 'final' || record.completed) reply.header('upload-offset', offset)
  if (record.fileSize === null) reply.header('upload-defer-length', '1')
  else reply.header('upload-length', record.fileSize)
  if (record.metadataHeader !== null) reply.header('upload-metadata', record.metadataHeader)
  if (record.concat !== undefined) reply.header('upload-concat', record.concat.kind === 'partial' ? 'partial' : record.concat.header)
  setUploadExpires(context, reply, upload)
  reply.code(200).send()
}

/**
 * The upload a request names, as it stands. An upload whose bytes all arrived
 * but that a crash kept from its final place is completed here, so that a
 * client that sees it done is right; so is a final upload whose partials are
 * all complete.
 */
export async function currentUpload (context: TusContext, request: TusRequest<UploadParams>): Promise<Upload> {
  const directory = uploadDirectory(context, request)
  const { uid } = request.params
  let upload = await peekUpload(context, directory, uid)
  if (upload.record.concat?.kind === 'final') {
    if (!upload.record.completed) {
      await assembleFinal(context, request, directory, uid)
      upload = await loadUpload(context, directory, uid)
    }
  } else if (!upload.record.completed && upload.offset === upload.record.fileSize) {
    const lock = await context.locker.acquire(lockKey(directory, uid))
    try {
      upload = await completeIfDone(context, request, directory, await loadUpload(context, directory, uid))
    } finally {
      await lock.release()
    }
    await finishFinalsOf(context, request, directory, upload)
  }
  return upload
}
