import type { FastifyReply } from 'fastify'
import type { Upload } from '../store/store.js'
import type { TusContext } from './context.js'

/**
 * When an unfinished upload expires (epoch ms): `expiration` after its last
 * write. Never for a completed upload, nor for one whose bytes have all arrived,
 * nor for a final upload (it lives as long as its partials). A partial upload
 * expires even when complete: it is nothing until a final upload uses it.
 */
export function expiresAt (context: TusContext, upload: Upload): number | undefined {
  const { expiration } = context.options
  const { record, offset, lastActivity } = upload
  if (expiration === undefined || record.concat?.kind === 'final') return undefined
  if (record.concat?.kind !== 'partial' && (record.completed || offset === record.fileSize)) return undefined
  return lastActivity + expiration
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
