import type { UploadMetadata } from './protocol/metadata.js'

/** What an upload is, as the plugin's hooks see it. */
export interface Resource {
  /** The upload id, the last segment of its URL. */
  readonly uid: string
  /** The base name of the completed file: the sanitized `filename` metadata, or the uid. */
  readonly fileName: string
  /** The announced length; `null` while the client defers it. */
  readonly fileSize: number | null
  /** Bytes stored so far. */
  readonly offset: number
  /** `Upload-Metadata` exactly as the client sent it; `null` when it sent none. */
  readonly metadataHeader: string | null
  /** The decoded `Upload-Metadata`. */
  readonly metadata: Readonly<UploadMetadata>
}

/** A resource whose bytes have all arrived. */
export interface CompletedResource extends Resource {
  readonly fileSize: number
}

/** The resource view of an upload's record and offset. */
export function toResource (record: Omit<Resource, 'offset'>, offset: number): Resource {
  const { uid, fileName, fileSize, metadataHeader, metadata } = record
  return { uid, fileName, fileSize, offset, metadataHeader, metadata }
}
