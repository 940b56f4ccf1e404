import type { Stats } from 'node:fs'
import type { UploadRecord } from './store.js'

/**
 * What tells one version of a record file from another. Records are never
 * written in place: each version is a new file renamed over the old one, so a
 * new version has a new inode and new timestamps (and usually a new size).
 * Plain stats, not bigint ones, which take a dozen BigInts and four divisions
 * to make, on every HEAD and PATCH: their times in milliseconds keep a quarter
 * of a microsecond, where two versions of a record are tens of microseconds
 * apart at the very least (a write and a rename; a file system whose clock is
 * coarser gives both the same time in nanoseconds too), and an inode number
 * past 2^53 that lost its lowest bits would still need the same size and times.
 */
export interface FileIdentity {
  readonly dev: number
  readonly ino: number
  readonly size: number
  readonly mtimeMs: number
  readonly ctimeMs: number
}

export function identityOf (stats: Stats): FileIdentity {
  const { dev, ino, size, mtimeMs, ctimeMs } = stats
  return { dev, ino, size, mtimeMs, ctimeMs }
}

function sameIdentity (a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
}

interface Entry {
  readonly identity: FileIdentity
  readonly record: UploadRecord
  /** The size its upload's data had when this process last appended to it under the upload's lock. */
  dataSize?: number
}

/** A cached record with the size its data had when this process last appended to it. */
export interface KnownRecord {
  readonly record: UploadRecord
  readonly dataSize: number
}

/**
 * The records read last, by path, each with the identity of the file it was
 * read from: a record whose file still has that identity is the same version,
 * so one `stat` replaces reading and parsing it again (HEAD, and every PATCH
 * after an upload's first). Any process may have replaced the file since, so an
 * entry is used after that check, or (`appendedTo`, `known`) while its data is
 * as this process left it. At most `capacity` entries; the one used longest ago
 * goes first.
 */
export class RecordCache {
  readonly #capacity: number
  readonly #entries = new Map<string, Entry>()

  constructor (capacity: number) {
    this.#capacity = capacity
  }

  /** Whether a record was read from `path`: only then is a `stat` worth making before reading it. */
  has (path: string): boolean {
    return this.#entries.has(path)
  }

  /** The record read from `path`, if the file there is still the one it was read from (`identity`: that file's stats will do). */
  get (path: string, identity: FileIdentity): UploadRecord | undefined {
    const entry = this.#entries.get(path)
    if (entry === undefined || !sameIdentity(entry.identity, identity)) return undefined
    this.#usedNow(path, entry)
    return entry.record
  }

  /**
   * Notes that the data of the upload whose record is `record` (this very
   * object, the version cached: else nothing is noted) holds `dataSize` bytes,
   * as the caller left it while holding the upload's lock.
   */
  appendedTo (path: string, record: UploadRecord, dataSize: number): void {
    const entry = this.#entries.get(path)
    if (entry?.record === record) entry.dataSize = dataSize
  }

  /**
   * The record cached for `path` and the data size noted beside it
   * (`appendedTo`), without a look at its file: the caller holds it against the
   * data file's size, and a record whose data is as this process left it has
   * not been replaced since (see FileStore.peek).
   */
  known (path: string): KnownRecord | undefined {
    const entry = this.#entries.get(path)
    if (entry?.dataSize === undefined) return undefined
    this.#usedNow(path, entry)
    return entry as KnownRecord
  }

  /** Forgets the data size noted beside the record at `path`: its data changed behind this process's back. */
  forgetDataSize (path: string): void {
    const entry = this.#entries.get(path)
    if (entry !== undefined) entry.dataSize = undefined
  }

  set (path: string, identity: FileIdentity, record: UploadRecord): void {
    this.#entries.delete(path)
    this.#entries.set(path, { identity, record })
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value as string)
  }

  /** Forgets the record at `path`: it is being replaced or removed. */
  delete (path: string): void {
    this.#entries.delete(path)
  }

  /** Moves an entry to the end of the line: the one used last. */
  #usedNow (path: string, entry: Entry): void {
    this.#entries.delete(path)
    this.#entries.set(path, entry)
  }
}
