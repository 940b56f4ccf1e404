import { close, fstat, open, read, type Stats } from 'node:fs'
import { identityOf, type FileIdentity } from './record-cache.js'

/** Most records fit in one read of this size. */
const FIRST_READ_BYTES = 16 * 1024

/**
 * The whole content of a small file, as UTF-8: open, read to the end, close.
 * Three calls where fs/promises' readFile makes four, and no FileHandle: a
 * third of its CPU time, on the path of every HEAD and PATCH.
 */
export function readText (path: string): Promise<string> {
  return readOpened(path, (fd, done) => done(null))
}

/**
 * The content of a small file and the identity of the very file it was read
 * from (an fstat of the open file, so no rename in between can mix them up).
 */
export function readTextWithIdentity (path: string): Promise<{ text: string, identity: FileIdentity }> {
  let stats: Stats
  return readOpened(path, (fd, done) => {
    fstat(fd, (error, read) => {
      stats = read
      done(error)
    })
  }).then((text) => ({ text, identity: identityOf(stats) }))
}

type AfterRead = (fd: number, done: (error: Error | null) => void) => void

function readOpened (path: string, afterRead: AfterRead): Promise<string> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (error, fd) => {
      if (error !== null) return reject(error)
      const parts: Buffer[] = []
      const finish = (failure: Error | null): void => {
        // a close error of a file opened for reading cannot lose anything: the content read stands
        close(fd, () => failure === null ? resolve(Buffer.concat(parts).toString('utf8')) : reject(failure))
      }
      const readNext = (size: number): void => {
        const buffer = Buffer.allocUnsafe(size)
        read(fd, buffer, 0, size, null, (error, bytes) => {
          if (error !== null) return finish(error)
          parts.push(buffer.subarray(0, bytes))
          if (bytes < size) afterRead(fd, finish)
          else readNext(size * 2)
        })
      }
      readNext(FIRST_READ_BYTES)
    })
  })
}
