import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../errors.js'
import { TusResumable } from '../protocol/headers.js'
import { toResource } from '../resource.js'
import { loadUpload, lockKey, uploadDirectory, type TusContext, type TusRequest, type UploadParams } from './context.js'

export const deleteHeaders = Type.Object({ 'tus-resumable': TusResumable })

/**
 * DELETE (termination): ends any request writing to the upload, then forgets it.
 * A completed file stays where it is: only the upload's state goes. Then
 * `onUploadTerminate` is told.
 */
export async function terminate (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  if (!context.options.extensions.has('termination')) throw new errors.FST_TUS_EXTENSION_DISABLED('termination')
  const directory = uploadDirectory(context, request)
  const { uid } = request.params
  const lock = await context.locker.acquire(lockKey(directory, uid))
  let upload
  try {
    upload = await loadUpload(context, directory, uid)
    await context.store.remove(directory, upload.record)
  } finally {
    await lock.release()
  }
  await context.options.onUploadTerminate?.(request, toResource(upload.record, upload.offset))
  reply.code(204).send()
}
