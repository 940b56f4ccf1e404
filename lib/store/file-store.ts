import { createHash } from 'node:crypto'
import { createReadStream, stat as statCallback, type Stats } from 'node:fs'
import { appendFile, link, mkdir, readdir, rm, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { nanoid } from 'nanoid'
import { errors } from '../errors.js'
import { appendStream, type AppendOptions, type AppendResult } from './append-stream.js'
import { FileDataAppender } from './data-appender.js'
import { closeFile, openFile, rename, stat, unlink, writeText } from './file-calls.js'
import { STATE_DIR } from './paths.js'
import { readText, readTextWithIdentity } from './read-text.js'
import { RecordCache } from './record-cache.js'
import type { DataAppender, Upload, UploadRecord, UploadStore } from './store.js'

export interface FileStoreOptions {
  readonly allowOverwriteFiles: boolean
  readonly jsonDumps: (value: unknown) => string
  readonly jsonLoads: (text: string) => unknown
}

/**
 * Uploads on a local or network file system. Under an upload directory:
 * `.metadata/<uid>.json` (the record, replaced by rename), `.metadata/<uid>.part`
 * (the data so far: its size is the offset), `.metadata/<hash>.name` (a
 * reservation of a completed file name: a hard link to the record as created)
 * and the completed files themselves.
 */
export class FileStore implements UploadStore {
  readonly #options: FileStoreOptions
  readonly #records = new RecordCache(CACHED_RECORDS)

  constructor (options: FileStoreOptions) {
    this.#options = options
  }

  async create (dir: string, record: UploadRecord): Promise<void> {
    const path = recordPath(dir, record.uid)
    const text = this.#options.jsonDumps(record)
    if (!await unless('ENOENT', replaceFile(path, text).then(() => true), false)) {
      // the first upload of this directory: its state directory comes first (not a mkdir per creation)
      await mkdir(join(dir, STATE_DIR), { recursive: true })
      await replaceFile(path, text)
    }
    if (!this.#reservesName(record)) return
    try {
      await this.#reserveName(dir, record)
    } catch (error) {
      await this.remove(dir, record)
      throw error
    }
  }

  async load (dir: string, uid: string): Promise<Upload | undefined> {
    // the data file's size is asked for alongside the record: most uploads asked about are not complete
    const path = recordPath(dir, uid)
    const dataFile = dataPath(dir, uid)
    let record: UploadRecord | undefined
    let data: Stats | undefined
    if (this.#records.has(path)) {
      // read before: its file's stat tells whether the cached record still stands
      let stats: Stats | undefined
      [stats, data] = await statBoth(path, dataFile)
      record = await this.#recordWithStats(path, uid, stats)
    } else {
      [record, data] = await Promise.all([this.#readRecord(path, uid), statIfThere(dataFile)])
    }
    return record === undefined ? undefined : uploadOf(record, data)
  }

  /**
   * One `stat` where `load` makes two: a record this process appended to (the
   * version cached, `appendedTo`) is taken as it stands while its data file
   * has the size this process left. Whoever replaces the record of such an
   * upload (its length known) changes what HEAD says only with its data: a
   * checksum's mark comes with bytes, a cut that leaves the size as it was
   * leaves the answer too, a completion removes the data (or, for a partial
   * upload, finds every byte there, which HEAD looks at under the lock), and so
   * does a termination. A data file of another size, or none, has the record's
   * file looked at then, as `load` does.
   */
  async peek (dir: string, uid: string): Promise<Upload | undefined> {
    const path = recordPath(dir, uid)
    const known = this.#records.known(path)
    if (known === undefined) return await this.load(dir, uid)
    const data = await statIfThere(dataPath(dir, uid))
    if (data?.size === known.dataSize) return uploadOf(known.record, data)
    // the data changed behind this process's back: the record is looked at too (and, until this
    // process appends again, HEAD looks at both files at once)
    this.#records.forgetDataSize(path)
    const record = await this.#recordWithStats(path, uid, await statIfThere(path))
    return record === undefined ? undefined : uploadOf(record, data)
  }

  appendedTo (dir: string, record: UploadRecord, dataSize: number): void {
    // a deferred length can be declared without a byte appended: such a record is always looked at
    if (record.fileSize !== null) this.#records.appendedTo(recordPath(dir, record.uid), record, dataSize)
  }

  async declareLength (dir: string, record: UploadRecord, fileSize: number): Promise<UploadRecord> {
    const declared = { ...record, fileSize }
    await this.#writeRecord(dir, declared)
    return declared
  }

  openData (dir: string, uid: string, created: boolean): DataAppender {
    return new FileDataAppender(dataPath(dir, uid), created)
  }

  async markUnverified (dir: string, record: UploadRecord, offset: number): Promise<UploadRecord> {
    const marked = { ...record, unverifiedFrom: offset }
    await this.#writeRecord(dir, marked)
    return marked
  }

  async settleUnverified (dir: string, record: UploadRecord, offset: number, dataSize?: number): Promise<UploadRecord> {
    const { unverifiedFrom, ...settled } = record
    if (dataSize !== offset) await unless('ENOENT', truncate(dataPath(dir, record.uid), offset), undefined)
    await this.#writeRecord(dir, settled)
    return settled
  }

  async complete (dir: string, record: UploadRecord): Promise<{ record: UploadRecord, filePath: string }> {
    const data = dataPath(dir, record.uid)
    if (record.fileSize === 0) await closeFile(await openFile(data, 'a')) // an empty upload has had no data file until now
    if (record.concat?.kind === 'partial') {
      const completed = { ...record, completed: true }
      await this.#writeRecord(dir, completed)
      return { record: completed, filePath: data }
    }
    const filePath = join(dir, record.fileName)
    if (this.#options.allowOverwriteFiles) {
      // a second name for the data, renamed over the target: atomic replacement
      const staged = join(dir, STATE_DIR, `${record.uid}.final`)
      await removeIfThere(staged)
      await link(data, staged)
      await rename(staged, filePath)
    } else {
      await linkWithoutOverwrite(data, filePath, record.fileName)
    }
    const completed = { ...record, completed: true }
    await this.#writeRecord(dir, completed)
    await removeIfThere(data)
    await this.#releaseName(dir, record)
    return { record: completed, filePath }
  }

  async concatenate (dir: string, final: UploadRecord, options: Omit<AppendOptions, 'limit' | 'observe'>): Promise<AppendResult> {
    const partials = (final.concat as { partials: readonly string[] }).partials
    const fd = await openFile(dataPath(dir, final.uid), 'w')
    let written = 0
    try {
      for (const partial of partials) {
        const source = createReadStream(dataPath(dir, partial))
        const result = await appendStream(fd, source, { ...options, limit: Infinity }).finally(() => source.destroy())
        written += result.written
        if (result.end !== 'ended') return { written, end: result.end }
      }
    } finally {
      await closeFile(fd)
    }
    return { written, end: 'ended' }
  }

  async addFinal (dir: string, partialUid: string, finalUid: string): Promise<void> {
    await appendFile(finalsPath(dir, partialUid), `${finalUid}\n`)
  }

  async finalsOf (dir: string, partialUid: string): Promise<string[]> {
    const text = await unless('ENOENT', readText(finalsPath(dir, partialUid)), '')
    return text.split('\n').filter((line) => line !== '')
  }

  async remove (dir: string, record: UploadRecord): Promise<void> {
    const path = recordPath(dir, record.uid)
    this.#records.delete(path)
    await removeIfThere(path)
    await removeIfThere(dataPath(dir, record.uid))
    await removeIfThere(finalsPath(dir, record.uid))
    if (!record.completed) await this.#releaseName(dir, record)
  }

  async list (dir: string): Promise<string[]> {
    const names = await unless('ENOENT', readdir(join(dir, STATE_DIR)), [])
    return names.filter((name) => name.endsWith(RECORD)).map((name) => name.slice(0, -RECORD.length))
  }

  async sweep (dir: string, before: number): Promise<number> {
    const stateDir = join(dir, STATE_DIR)
    const names = await unless('ENOENT', readdir(stateDir), [])
    const uids = new Set(names.filter((name) => name.endsWith(RECORD)).map((name) => name.slice(0, -RECORD.length)))
    let removed = 0
    for (const name of names) {
      const path = join(stateDir, name)
      if (await this.#isLeftover(dir, name, path, uids, before)) {
        await rm(path, { recursive: true, force: true })
        removed++
      }
    }
    return removed
  }

  async #isLeftover (dir: string, name: string, path: string, uids: ReadonlySet<string>, before: number): Promise<boolean> {
    if (name.endsWith('.tmp')) return await statIfThere(path).then((stats) => stats !== undefined && stats.mtimeMs < before)
    const [stem = '', kind, aside] = name.split('.')
    if (kind === 'lock') return aside !== undefined || !uids.has(stem) // a lock set aside by a holder or a taker, or of no upload
    if (kind === 'final' || kind === 'finals') return !uids.has(stem)
    if (kind === 'part') {
      const record = uids.has(stem) ? (await this.load(dir, stem))?.record : undefined
      return record === undefined || (record.completed && record.concat?.kind !== 'partial')
    }
    if (kind === 'name') {
      const text = await unless('ENOENT', readText(path), undefined) // gone meanwhile: nothing of it is left to keep
      return text === undefined || !uids.has(this.#reservationOwner(text))
    }
    return false
  }

  /**
   * The record of a file whose stats were just taken (`undefined`: no file):
   * the version cached if the file is still the one it was read from, else
   * the file read again.
   */
  async #recordWithStats (path: string, uid: string, stats: Stats | undefined): Promise<UploadRecord | undefined> {
    if (stats !== undefined) return this.#records.get(path, stats) ?? await this.#readRecord(path, uid)
    this.#records.delete(path)
    return undefined
  }

  /** The upload's record read and parsed from its file at `path`, and cached. */
  async #readRecord (path: string, uid: string): Promise<UploadRecord | undefined> {
    const read = await unless('ENOENT', readTextWithIdentity(path), undefined)
    if (read === undefined) {
      this.#records.delete(path)
      return undefined
    }
    let record: UploadRecord
    try {
      record = this.#options.jsonLoads(read.text) as UploadRecord
    } catch (error) {
      throw new errors.FST_TUS_CORRUPT_METADATA(uid, (error as Error).message)
    }
    this.#records.set(path, read.identity, record)
    return record
  }

  async #writeRecord (dir: string, record: UploadRecord): Promise<void> {
    const path = recordPath(dir, record.uid)
    this.#records.delete(path)
    await replaceFile(path, this.#options.jsonDumps(record))
  }

  /**
   * Reserves the completed file's name for this upload, so that a second upload
   * of the same name is refused at creation. A reservation whose owner has no
   * record any more (a crash between the two writes) is stale and taken over.
   */
  async #reserveName (dir: string, record: UploadRecord): Promise<void> {
    const reservation = reservationPath(dir, record.fileName)
    const path = recordPath(dir, record.uid)
    if (!await unless('EEXIST', link(path, reservation).then(() => true), false)) {
      const owner = this.#reservationOwner(await readText(reservation))
      if (await exists(recordPath(dir, owner))) throw new errors.FST_TUS_FILE_EXISTS(record.fileName)
      const temporary = temporaryPath(reservation)
      await link(path, temporary)
      await rename(temporary, reservation)
    }
    if (await exists(join(dir, record.fileName))) throw new errors.FST_TUS_FILE_EXISTS(record.fileName)
  }

  /**
   * The upload a reservation belongs to. A reservation is a second name of its
   * upload's record as created (so reserving writes no file of its own); one
   * made by 0.1.0 holds the bare uid.
   */
  #reservationOwner (text: string): string {
    try {
      const { uid } = this.#options.jsonLoads(text) as Partial<UploadRecord>
      if (typeof uid === 'string') return uid
    } catch {}
    return text
  }

  /**
   * Whether an upload reserves its file name: only when files are never
   * overwritten, and not when it is named by its own (unique) id.
   */
  #reservesName (record: UploadRecord): boolean {
    return !this.#options.allowOverwriteFiles && record.fileName !== record.uid
  }

  async #releaseName (dir: string, record: UploadRecord): Promise<void> {
    if (!this.#reservesName(record)) return
    const reservation = reservationPath(dir, record.fileName)
    const text = await readText(reservation).catch(() => undefined)
    if (text !== undefined && this.#reservationOwner(text) === record.uid) await removeIfThere(reservation)
  }
}

const RECORD = '.json'
/** Records kept parsed, with the identity of their files (RecordCache): the uploads in use. */
const CACHED_RECORDS = 256

/** An upload as its record and its data file's stats (`undefined`: no data file yet) tell it. */
function uploadOf (record: UploadRecord, data: Stats | undefined): Upload {
  if (record.completed && record.concat?.kind !== 'partial') return { record, offset: record.fileSize as number, lastActivity: Date.parse(record.createdAt) }
  const size = data?.size ?? 0
  return { record, offset: Math.min(size, record.unverifiedFrom ?? size), lastActivity: data?.mtimeMs ?? Date.parse(record.createdAt) }
}

function recordPath (dir: string, uid: string): string {
  return join(dir, STATE_DIR, uid + RECORD)
}

function dataPath (dir: string, uid: string): string {
  return join(dir, STATE_DIR, `${uid}.part`)
}

function finalsPath (dir: string, uid: string): string {
  return join(dir, STATE_DIR, `${uid}.finals`)
}

function reservationPath (dir: string, fileName: string): string {
  return join(dir, STATE_DIR, `${createHash('sha256').update(fileName).digest('hex')}.name`)
}

/** Gives `data` the name `filePath` unless that name exists; a link to the same data is a finished earlier try. */
async function linkWithoutOverwrite (data: string, filePath: string, fileName: string): Promise<void> {
  const linked = await unless('EEXIST', link(data, filePath).then(() => true), false)
  if (linked) return
  const [existing, ours] = await Promise.all([stat(filePath), stat(data)])
  if (existing.ino !== ours.ino || existing.dev !== ours.dev) throw new errors.FST_TUS_FILE_EXISTS(fileName)
}

/** Replaces the file at `path` by one holding `content`, atomically: a temporary file renamed over it. */
async function replaceFile (path: string, content: string): Promise<void> {
  const temporary = temporaryPath(path)
  await writeText(temporary, content)
  await rename(temporary, path)
}

/** Removes the file at `path`, if there is one: one call, where `rm` stats it twice first. */
async function removeIfThere (path: string): Promise<void> {
  await unless('ENOENT', unlink(path), undefined)
}

const temporaryPath = (path: string): string => `${path}.${nanoid(8)}.tmp`

/**
 * The stats of the file at `path`, `undefined` when there is none: one callback
 * call under one promise, for the two stats of every HEAD and PATCH (through
 * the promisified call and `unless`, a load took a fifth more CPU here).
 */
function statIfThere (path: string): Promise<Stats | undefined> {
  return new Promise((resolve, reject) => { statCallback(path, settleStat(resolve, reject)) })
}

/**
 * The stats of two files (undefined for one that is not there), asked for at
 * once under one promise, where a promise for each and Promise.all made three:
 * every HEAD and PATCH of a cached record asks for these two.
 */
function statBoth (first: string, second: string): Promise<[Stats | undefined, Stats | undefined]> {
  return new Promise((resolve, reject) => {
    const found: [Stats | undefined, Stats | undefined] = [undefined, undefined]
    let pending = 2
    let failure: Error | undefined
    const oneDone = (): void => {
      if (--pending > 0) return
      if (failure === undefined) resolve(found)
      else reject(failure)
    }
    const settle = (index: 0 | 1) => settleStat<Stats>((stats) => {
      found[index] = stats
      oneDone()
    }, (error) => {
      failure ??= error
      oneDone()
    })
    statCallback(first, settle(0))
    statCallback(second, settle(1))
  })
}

function settleStat<S> (resolve: (stats: S | undefined) => void, reject: (error: Error) => void) {
  return (error: NodeJS.ErrnoException | null, stats: S): void => {
    if (error === null) resolve(stats)
    else if (error.code === 'ENOENT') resolve(undefined)
    else reject(error)
  }
}

async function exists (path: string): Promise<boolean> {
  return await statIfThere(path) !== undefined
}

/** The result of `operation`, or `fallback` when it fails with the error `code`. */
async function unless<T, F> (code: string, operation: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await operation
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === code) return fallback
    throw error
  }
}
