import { toResource, type CompletedResource } from '../resource.js'
import type { Upload } from '../store/store.js'
import type { TusContext, TusRequest } from './context.js'

/**
 * Completes an upload whose bytes have all arrived: the file goes to its final
 * place, then `onUploadDone` runs (not for a partial upload: it is no file, only
 * a piece of a final upload). The caller holds the upload's lock, or is the
 * creation nobody else can know of yet. An upload that is not complete, or was
 * completed before, is returned as it is.
 */
export async function completeIfDone (context: TusContext, request: TusRequest, directory: string, upload: Upload): Promise<Upload> {
  if (upload.record.completed || upload.record.fileSize !== upload.offset) return upload
  const { record, filePath } = await context.store.complete(directory, upload.record)
  if (record.concat?.kind !== 'partial') {
    await context.options.onUploadDone?.(request, toResource(record, upload.offset) as CompletedResource, filePath)
  }
  return { ...upload, record }
}
