// The raw protocol of the benchmark's baseline servers, on node:http's request
// and response objects: a POST creates an empty file (or, for raw-durable, a
// record: createRecord), a HEAD stats one (or, for raw-durable, its record and
// its data file, or its data file alone when this server appended to it last:
// statWithRecord), a PATCH appends its body in batches of about
// 1 MiB written with fs.writev (one batch in flight while the next one gathers;
// for raw-durable, once the upload is checked: openRecorded) or, when
// discarding, reads and drops it. A PATCH with `Upload-Checksum: sha256
// <base64 digest>` has its body hashed piece by piece as it arrives, as a tus
// server does, and answered 460 when the digest differs.
// Every PATCH answer says how many body bytes came (`x-received`), so that the
// client can check them when no file holds them.
import { createHash, randomBytes } from 'node:crypto'
import { close, open, read, rename, stat, writeFile, writev } from 'node:fs'
import { join } from 'node:path'

const BATCH_BYTES = 1024 * 1024
/** While a write is in flight, the socket is paused once this much waits. */
const MAX_PENDING_BYTES = 2 * BATCH_BYTES
const prefix = randomBytes(4).toString('hex')
let created = 0

/** A name the raw servers accept for a file: one plain path segment. */
export const RAW_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/

export function answer (res, status, headers = {}) {
  res.writeHead(status, { 'content-length': 0, ...headers })
  res.end()
}

export function createFile (dir, res) {
  const name = `${prefix}-${++created}.bin`
  open(join(dir, name), 'w', (error, fd) => {
    if (error !== null) return answer(res, 500)
    close(fd, (error) => answer(res, error === null ? 201 : 500, { location: `/raw/${name}` }))
  })
}

/**
 * The least a crash-safe creation does: the upload's record (its length) written
 * to a temporary file and renamed into place, so that no crash leaves half of
 * one; the data file comes with the first PATCH.
 */
export function createRecord (dir, res, length) {
  const name = `${prefix}-${++created}.bin`
  const record = join(dir, `.${name}.json`)
  writeFile(`${record}.tmp`, JSON.stringify({ name, length: Number(length) }), (error) => {
    if (error !== null) return answer(res, 500)
    rename(`${record}.tmp`, record, (error) => answer(res, error === null ? 201 : 500, { location: `/raw/${name}` }))
  })
}

/**
 * Records read by loadRecorded, by path: the length each holds, the identity of
 * its file, and the size its data file had when this server last appended to it.
 */
const records = new Map()

/**
 * What a crash-safe server must learn of an upload when other processes may
 * replace its record: the record's stat and the data file's size, asked for at
 * once (with `openData`, the data file opened for appending beside them, made
 * if need be: a bound, so it spares itself the fallback of a server), and
 * the record read (open, read, close) only when its file is not the one read
 * last. `done(status)` on failure, else `done(null, { offset, length, fd, record })`.
 */
function loadRecorded (dir, name, openData, done) {
  const recordPath = join(dir, `.${name}.json`)
  const dataPath = join(dir, name)
  let pending = openData ? 3 : 2
  let recordError = null
  let openError = null
  let recordStats
  let offset = 0
  let fd
  const fail = (status) => {
    if (fd !== undefined) close(fd, () => {})
    done(status)
  }
  const settled = () => {
    if (--pending > 0) return
    if (recordError !== null) return fail(recordError.code === 'ENOENT' ? 404 : 500)
    if (openError !== null) return fail(500)
    const cached = records.get(recordPath)
    if (cached !== undefined && sameFile(cached.stats, recordStats)) return done(null, { offset, length: cached.length, fd, record: cached })
    readRecord(recordPath, (error, read) => {
      if (error !== null) return fail(error.code === 'ENOENT' ? 404 : 500)
      const record = { stats: recordStats, length: read.length, dataSize: undefined }
      records.set(recordPath, record)
      done(null, { offset, length: record.length, fd, record })
    })
  }
  stat(recordPath, (error, stats) => {
    recordError = error
    recordStats = stats
    settled()
  })
  stat(dataPath, (error, stats) => {
    if (error === null) offset = stats.size
    settled()
  })
  if (openData) {
    open(dataPath, 'a', (error, opened) => {
      openError = error
      if (error === null) fd = opened
      settled()
    })
  }
}

/**
 * The least a HEAD of such an upload does: loadRecorded, and the offset and
 * length it found; or, for an upload this server appended to last, one stat of
 * the data file (a record replaced since would have come with other data).
 */
export function statWithRecord (dir, name, res) {
  const found = (status, upload) => {
    if (status !== null) return answer(res, status)
    answer(res, 200, { 'upload-offset': upload.offset, 'upload-length': upload.length, 'cache-control': 'no-store' })
  }
  const cached = records.get(join(dir, `.${name}.json`))
  if (cached?.dataSize === undefined) return loadRecorded(dir, name, false, found)
  stat(join(dir, name), (error, stats) => {
    if (error === null && stats.size === cached.dataSize) found(null, { offset: stats.size, length: cached.length })
    else loadRecorded(dir, name, false, found)
  })
}

/**
 * The least a PATCH of such an upload does before its bytes go to the data
 * file, as a tus server that shares its directory with other processes must:
 * loadRecorded with the data file opened beside it, then `Upload-Offset` held
 * against the data file's size (409) and the body's length against the
 * upload's (413). For appendBody.
 */
export function openRecorded (dir, name, headers) {
  const offset = Number(headers['upload-offset'])
  const bodyLength = Number(headers['content-length'] ?? 0)
  return (done) => loadRecorded(dir, name, true, (status, upload) => {
    if (status !== null) return done(status)
    const refusal = upload.offset !== offset ? 409 : offset + bodyLength > upload.length ? 413 : null
    if (refusal === null) return done(null, upload.fd, (written) => { upload.record.dataSize = offset + written })
    close(upload.fd, () => {})
    done(refusal)
  })
}

/** Opens the data file at `path` for appending, making it if need be: raw's open. For appendBody. */
export function openForAppend (path) {
  return (done) => open(path, 'a', (error, fd) => done(error === null ? null : 500, fd))
}

function sameFile (a, b) {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
}

function readRecord (path, done) {
  open(path, 'r', (error, fd) => {
    if (error !== null) return done(error)
    const buffer = Buffer.allocUnsafe(4096)
    read(fd, buffer, 0, buffer.length, null, (error, bytes) => {
      close(fd, () => {})
      if (error !== null) return done(error)
      done(null, JSON.parse(buffer.toString('utf8', 0, bytes)))
    })
  })
}

export function statFile (path, res) {
  stat(path, (error, stats) => {
    if (error !== null) return answer(res, error.code === 'ENOENT' ? 404 : 500)
    answer(res, 200, { 'upload-offset': stats.size, 'cache-control': 'no-store' })
  })
}

export function discardBody (req, res) {
  let received = 0
  req.on('data', (chunk) => { received += chunk.length })
  req.once('end', () => answer(res, 204, { 'x-received': received }))
}

/** The PATCH's sha256 checksum to hash its body against; null for one that is not `sha256 <digest>`. */
function bodyChecksum (req) {
  const value = req.headers['upload-checksum']
  if (value === undefined) return undefined
  const [algorithm, digest, ...rest] = value.split(' ')
  if (algorithm !== 'sha256' || digest === undefined || rest.length > 0) return null
  return { hash: createHash('sha256'), digest }
}

/**
 * Appends a PATCH body to the data file that `openData` opens (it calls back
 * with an HTTP status when the PATCH is refused, else null, the file
 * descriptor and, optionally, what to tell the number of bytes written once
 * all are). The body is read from the start, while the file opens.
 */
export function appendBody (req, res, openData) {
  const checksum = bodyChecksum(req)
  if (checksum === null) {
    req.resume()
    return answer(res, 400)
  }
  let fd
  let pending = []
  let pendingBytes = 0
  let received = 0
  let busy = true // opening the file, then while a write is in flight
  let ended = false
  let failed = false

  const fail = () => {
    if (failed) return
    failed = true
    req.destroy()
    if (fd !== undefined) close(fd, () => {})
    if (!res.headersSent) answer(res, 500)
  }
  req.on('data', (chunk) => {
    received += chunk.length
    checksum?.hash.update(chunk)
    pending.push(chunk)
    pendingBytes += chunk.length
    if (!busy && pendingBytes >= BATCH_BYTES) flush()
    else if (busy && pendingBytes >= MAX_PENDING_BYTES) req.pause()
  })
  req.once('end', () => {
    ended = true
    if (!busy) next()
  })
  req.once('error', fail)
  req.once('close', () => { if (!ended) fail() })
  let appended
  openData((status, opened, onAppended) => {
    if (status === null) {
      fd = opened
      appended = onAppended
      busy = false
      return next()
    }
    if (failed) return
    failed = true
    req.removeAllListeners('data')
    req.resume()
    answer(res, status, { connection: 'close' })
  })

  /** What follows a finished write (or the open): the next batch, the answer, or waiting for data. */
  function next () {
    if (failed) return
    if (pendingBytes >= BATCH_BYTES || (ended && pendingBytes > 0)) flush()
    else if (ended) {
      close(fd, (error) => {
        if (error !== null) return fail()
        appended?.(received)
        const matches = checksum === undefined || checksum.hash.digest('base64') === checksum.digest
        answer(res, matches ? 204 : 460, { 'x-received': received })
      })
    } else if (req.isPaused()) req.resume()
  }

  function flush () {
    const batch = pending
    const bytes = pendingBytes
    pending = []
    pendingBytes = 0
    busy = true
    writev(fd, batch, (error, written) => {
      busy = false
      if (error !== null) return fail()
      if (written < bytes) { // a short write: its rest goes first in line
        pending = rest(batch, written).concat(pending)
        pendingBytes += bytes - written
      }
      next()
      if (!ended && req.isPaused() && pendingBytes < MAX_PENDING_BYTES) req.resume()
    })
  }
}

function rest (batch, written) {
  let skipped = 0
  for (let index = 0; index < batch.length; index++) {
    if (skipped + batch[index].length > written) return [batch[index].subarray(written - skipped), ...batch.slice(index + 1)]
    skipped += batch[index].length
  }
  return []
}
