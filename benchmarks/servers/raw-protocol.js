// The raw protocol of the benchmark's baseline servers, on node:http's request
// and response objects: a POST creates an empty file (or, for raw-durable, a
// record: createRecord), a HEAD stats one (or, for raw-durable, its record and
// its data file: statWithRecord), a PATCH appends its body in batches of about
// 1 MiB written with fs.writev (one batch in flight while the next one gathers)
// or, when discarding, reads and drops it. A PATCH with `Upload-Checksum: sha256
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
  writeFile(`${record}.tmp`, JSON.stringify({ name, length }), (error) => {
    if (error !== null) return answer(res, 500)
    rename(`${record}.tmp`, record, (error) => answer(res, error === null ? 201 : 500, { location: `/raw/${name}` }))
  })
}

/** Records read by statWithRecord, by path: the length each holds and the identity of its file. */
const records = new Map()

/**
 * The least a HEAD of such an upload does when other processes may replace its
 * record: the record's stat and the data file's size asked for at once, and the
 * record read (open, read, close) only when its file is not the one read last.
 */
export function statWithRecord (dir, name, res) {
  const recordPath = join(dir, `.${name}.json`)
  let pending = 2
  let recordError = null
  let recordStats
  let offset = 0
  const settled = () => {
    if (--pending > 0) return
    if (recordError !== null) return answer(res, recordError.code === 'ENOENT' ? 404 : 500)
    const headers = (length) => ({ 'upload-offset': offset, 'upload-length': length, 'cache-control': 'no-store' })
    const cached = records.get(recordPath)
    if (cached !== undefined && sameFile(cached.stats, recordStats)) return answer(res, 200, headers(cached.length))
    readRecord(recordPath, (error, record) => {
      if (error !== null) return answer(res, error.code === 'ENOENT' ? 404 : 500)
      records.set(recordPath, { stats: recordStats, length: record.length })
      answer(res, 200, headers(record.length))
    })
  }
  stat(recordPath, (error, stats) => {
    recordError = error
    recordStats = stats
    settled()
  })
  stat(join(dir, name), (error, stats) => {
    if (error === null) offset = stats.size
    settled()
  })
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

export function appendBody (req, res, path) {
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
  open(path, 'a', (error, opened) => {
    if (error !== null) return fail()
    fd = opened
    busy = false
    next()
  })

  /** What follows a finished write (or the open): the next batch, the answer, or waiting for data. */
  function next () {
    if (failed) return
    if (pendingBytes >= BATCH_BYTES || (ended && pendingBytes > 0)) flush()
    else if (ended) {
      close(fd, (error) => {
        if (error !== null) return fail()
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
