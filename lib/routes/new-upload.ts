import { nanoid } from 'nanoid'
import { errors } from '../errors.js'
import { decodeMetadata, encodeMetadata } from '../protocol/metadata.js'
import { toResource } from '../resource.js'
import { sanitizeFileName } from '../store/paths.js'
import type { UploadConcat, UploadRecord } from '../store/store.js'
import type { TusContext, TusRequest } from './context.js'

/**
 * The record of an upload a creation request asks for: a fresh id, the decoded
 * `Upload-Metadata` (its `filename` defaulting to `fileName`, from elsewhere in
 * the request), and the completed file's name (a partial upload is never a file
 * of its own, so it is named by its id). `onUploadCreate` sees it first: it may
 * refuse the upload by throwing, or give it other metadata.
 */
export async function newRecord (
  context: TusContext, request: TusRequest, fileSize: number | null, { concat, fileName }: { concat?: UploadConcat, fileName?: string } = {}
): Promise<UploadRecord> {
  const metadataHeader = request.headers['upload-metadata'] ?? null
  if (metadataHeader !== null && Buffer.byteLength(metadataHeader) > context.options.maxMetadataSize) {
    throw new errors.FST_TUS_METADATA_TOO_LARGE(context.options.maxMetadataSize)
  }
  const metadata = metadataHeader === null ? {} : decodeMetadata(metadataHeader)
  if (metadata.filename === undefined && fileName !== undefined) metadata.filename = fileName
  const uid = nanoid()
  const record = named({ uid, fileName: uid, fileSize, metadataHeader, metadata, createdAt: new Date().toISOString(), completed: false, ...(concat === undefined ? {} : { concat }) })
  const changed = await context.options.onUploadCreate?.(request, toResource(record, 0))
  if (changed?.metadata === undefined) return record
  return named({ ...record, metadata: changed.metadata, metadataHeader: encodeMetadata(changed.metadata) })
}

/** A record with the file name its metadata gives. */
function named (record: UploadRecord): UploadRecord {
  const fileName = record.concat?.kind === 'partial' ? record.uid : sanitizeFileName(record.metadata.filename, record.uid)
  return { ...record, fileName }
}

/** The upload's URL: absolute from the request's protocol and host (trustProxy-aware), or a path. */
export function location (context: TusContext, request: TusRequest, uid: string): string {
  const path = context.resourceRoute.fill(context.resourceRouteName, { ...request.params, uid })
  if (context.options.relativeLocation || request.host === undefined) return path
  return `${request.protocol}://${request.host}${path}`
}
