import type { Readable } from 'node:stream'
import type { UploadMetadata } from '../protocol/metadata.js'
import type { AppendOptions, AppendResult } from './append-stream.js'

/** What is persisted about an upload between requests (the metadata file). */
export interface UploadRecord {
  readonly uid: string
  readonly fileName: string
  readonly fileSize: number | null
  readonly metadataHeader: string | null
  readonly metadata: UploadMetadata
  readonly createdAt: string
  /** The completed file is in its final place. */
  readonly completed: boolean
  /**
   * Set while a body with a checksum is being appended from this offset: bytes
   * past it are not verified and do not count, and are cut off if a crash left them.
   */
  readonly unverifiedFrom?: number
  /** Concatenation: a partial upload, or a final one made of partial uploads (ids, in order). */
  readonly concat?: UploadConcat
}

export type UploadConcat =
  | { readonly kind: 'partial' }
  | { readonly kind: 'final', readonly partials: readonly string[], readonly header: string }

/** An upload as it stands: its record and the bytes on disk. */
export interface Upload {
  readonly record: UploadRecord
  readonly offset: number
  /** When its data last changed (epoch ms): the data file's mtime, or its creation before any byte. */
  readonly lastActivity: number
}

/** An upload's data, opened to take one body (UploadStore.openData). */
export interface DataAppender {
  /** Appends `source` at the end of the data, as `options` say (at most `limit` bytes), and closes the data. */
  append (source: Readable, options: AppendOptions): Promise<AppendResult>
  /** Closes the data if no append did; never rejects. */
  close (): Promise<void>
}

/**
 * Bytes and metadata of uploads in one upload directory. Knows nothing of HTTP;
 * callers hold the upload's lock around every call that changes it.
 */
export interface UploadStore {
  /** Persists a new upload; rejects with a 409 when its file name is taken. */
  create (dir: string, record: UploadRecord): Promise<void>
  /** The upload, or `undefined` when there is none with that id. */
  load (dir: string, uid: string): Promise<Upload | undefined>
  /**
   * The upload as `load` gives it, for an answer that changes nothing (HEAD):
   * the store may take what it read before as it stands while the upload's
   * data shows that nobody changed the upload since (`appendedTo`).
   */
  peek (dir: string, uid: string): Promise<Upload | undefined>
  /** Notes that the caller, holding the lock, appended to the data of `record` (as loaded), which now holds `dataSize` bytes. */
  appendedTo (dir: string, record: UploadRecord, dataSize: number): void
  /** Records the length of an upload created with a deferred length. */
  declareLength (dir: string, record: UploadRecord, fileSize: number): Promise<UploadRecord>
  /**
   * The upload's data, to take one body. An upload that exists (not `created`
   * by this request) has its data opened from now on, beside the caller's
   * other file calls. The caller holds the lock, and closes what this returns
   * whatever happens.
   */
  openData (dir: string, uid: string, created: boolean): DataAppender
  /** Records that bytes from `offset` on are not verified yet. */
  markUnverified (dir: string, record: UploadRecord, offset: number): Promise<UploadRecord>
  /**
   * Ends a verification: keeps the data up to `offset` (cutting the rest) and
   * clears the mark. `dataSize`, when the caller knows how many bytes the data
   * holds, spares the cut if it is `offset` already.
   */
  settleUnverified (dir: string, record: UploadRecord, offset: number, dataSize?: number): Promise<UploadRecord>
  /**
   * Moves the data to the completed file; returns the record and the file's path.
   * A partial upload keeps its data where it is, for its final upload.
   */
  complete (dir: string, record: UploadRecord): Promise<{ record: UploadRecord, filePath: string }>
  /** Fills a final upload's data with its partials' data, in order, each read once; returns the bytes written. */
  concatenate (dir: string, final: UploadRecord, options: Omit<AppendOptions, 'limit' | 'observe'>): Promise<AppendResult>
  /** Notes that a final upload waits for a partial one, so that the partial's completion can find it. */
  addFinal (dir: string, partialUid: string, finalUid: string): Promise<void>
  /** The final uploads that named a partial upload. */
  finalsOf (dir: string, partialUid: string): Promise<string[]>
  /** Forgets the upload: its metadata, its unfinished data, its name reservation, the finals it waits for. */
  remove (dir: string, record: UploadRecord): Promise<void>
  /** The ids of the uploads that have a record in the directory. */
  list (dir: string): Promise<string[]>
  /**
   * Removes what interrupted writes left behind: temporary files older than
   * `before` (epoch ms), data and name reservations whose upload has no record,
   * staging links of completions. Returns how many files went.
   */
  sweep (dir: string, before: number): Promise<number>
}
