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
    for (const start of starts) {
      const actual = Buffer.alloc(Math.min(length, bytes - start))
      await handle.read(actual, 0, actual.length, start)
      if (!actual.equals(patternBytes(chunk, patternStart + start, actual.length))) {
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

/** The pattern's bytes from `start` on: the chunk, repeated. */
export function patternBytes (chunk, start, length) {
  const bytes = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const from = (start + filled) % chunk.length
    filled += chunk.copy(bytes, filled, from, Math.min(chunk.length, from + length - filled))
  }
  return bytes
}
