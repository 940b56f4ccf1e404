import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { TusResumable } from '../protocol/headers.js'
import { completeIfDone } from './complete.js'
import { setUploadExpires } from './expiration.js'
import { loadUpload, lockKey, uploadDirectory, type TusContext, type TusRequest, type UploadParams } from './context.js'

export const headHeaders = Type.Object({ 'tus-resumable': TusResumable })

/**
 * HEAD: where an upload stands. A completed upload keeps answering with its full
 * offset. An upload whose bytes all arrived but that a crash kept from its final
 * place is completed here, so that a client that sees it done is right.
 */
export async function head (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const directory = uploadDirectory(context, request)
  const { uid } = request.params
  let upload = await loadUpload(context, directory, uid)
  if (!upload.record.completed && upload.offset === upload.record.fileSize) {
    const lock = await context.locker.acquire(lockKey(directory, uid))
    try {
      upload = await completeIfDone(context, request, directory, await loadUpload(context, directory, uid))
    } finally {
      lock.release()
    }
  }
  const { record, offset } = upload
  reply.header('cache-control', 'no-store')
  reply.header('upload-offset', offset)
  if (record.fileSize === null) reply.header('upload-defer-length', '1')
  else reply.header('upload-length', record.fileSize)
  if (record.metadataHeader !== null) reply.header('upload-metadata', record.metadataHeader)
  setUploadExpires(context, reply, upload)
  reply.code(200).send()
}
