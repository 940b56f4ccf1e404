import type { FastifyReply } from 'fastify'
import type { Upload } from '../store/store.js'
import type { TusContext } from './context.js'

/**
 * When an unfinished upload expires (epoch ms): `expiration` after its last
 * write. Never for a completed upload, nor for one whose bytes have all arrived.
 */
export function expiresAt (context: TusContext, upload: Upload): number | undefined {
  const { expiration } = context.options
  if (expiration === undefined || upload.record.completed || upload.offset === upload.record.fileSize) return undefined
  return upload.lastActivity + expiration
}

export function isExpired (context: TusContext, upload: Upload, now: number): boolean {
  const at = expiresAt(context, upload)
  return at !== undefined && at <= now
}

/** `Upload-Expires` (an IMF-fixdate) for an upload that will expire. */
export function setUploadExpires (context: TusContext, reply: FastifyReply, upload: Upload): void {
  const at = expiresAt(context, upload)
  if (at !== undefined) reply.header('upload-expires', new Date(at).toUTCString())
}
