// What arrived on disk: the size must be the bytes sent, and samples across the
// file must be the pattern the client sent there. A benchmark that loses or
// garbles bytes fails loudly.
import { open, stat } from 'node:fs/promises'

/** Windows compared per file: the first and last chunk-sized ones, and evenly spaced ones between. */
const SAMPLES = 16

/** The file at `filePath` holds exactly `bytes` bytes of the pattern, from `patternStart` on. */
export async function verifyFile (filePath, bytes, chunk, patternStart) {
  const size = await stat(filePath).then((stats) => stats.size, (error) => {
    throw new Error(`${filePath}: not on disk after a successful upload (${error.code})`)
  })
  if (size !== bytes) throw new Error(`${filePath}: ${size} bytes on disk, ${bytes} sent: ${bytes - size} bytes LOST`)
  if (bytes === 0) return
  const handle = await open(filePath, 'r')
  try {
    const length = Math.min(chunk.length, bytes)
    const starts = new Set([0, bytes - length])
    for (let index = 1; index < SAMPLES - 1; index++) starts.add(Math.floor((bytes - length) * index / (SAMPLES - 1)) + index)
    // one buffer for every window, compared in place: a fresh one each time cost the client more than the uploads it checks
    const window = Buffer.allocUnsafe(length)
    for (const start of starts) {
      const actual = window.subarray(0, Math.min(length, bytes - start))
      const { bytesRead } = await handle.read(actual, 0, actual.length, start)
      if (bytesRead !== actual.length || !holdsPattern(actual, chunk, patternStart + start)) {
        throw new Error(`${filePath}: the bytes at offset ${start} are not the ones sent: CORRUPT`)
      }
    }
  } finally {
    await handle.close()
  }
}

/** A server that keeps no file counted the body bytes it read: they must be the ones sent. */
export function verifyCount (what, received, bytes) {
  if (received !== bytes) throw new Error(`${what}: the server read ${received} body bytes, ${bytes} were sent: ${bytes - received} bytes LOST`)
}

/** The pattern's bytes at `position`, at most `most` of them, without copying: one piece of `chunk`. */
export function patternPiece (chunk, position, most) {
  const start = position % chunk.length
  const end = Math.min(chunk.length, start + most)
  return start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end)
}

/** The pattern's `length` bytes from `start` on, piece by piece, without copying. */
export function * patternPieces (chunk, start, length) {
  for (let done = 0; done < length;) {
    const piece = patternPiece(chunk, start + done, length - done)
    yield piece
    done += piece.length
  }
}

/** Whether `bytes` are the pattern's from `start` on, compared piece by piece (no copy of the pattern). */
function holdsPattern (bytes, chunk, start) {
  let offset = 0
  for (const piece of patternPieces(chunk, start, bytes.length)) {
    if (!bytes.subarray(offset, offset + piece.length).equals(piece)) return false
    offset += piece.length
  }
  return true
}
