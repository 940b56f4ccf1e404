import { close, constants } from 'node:fs'
import type { Readable } from 'node:stream'
import { appendStream, type AppendOptions, type AppendResult } from './append-stream.js'
import { closeFile, openFile } from './file-calls.js'
import type { DataAppender } from './store.js'

/** Opens a data file that is there already: one that is not is no reason to make it. */
const EXISTING_FOR_APPEND = constants.O_WRONLY | constants.O_APPEND

/**
 * An upload's data file, opened for one body. For an upload that exists, the
 * open starts when this is made, so that it runs beside the load of the upload
 * (the body of a PATCH waits for one round of file calls instead of two); it
 * looks for the file and never makes one, so a request for an upload that turns
 * out not to be there leaves nothing behind. When that open finds no file (the
 * first body of an upload) or fails, `append` opens the file as for a new
 * upload, making it, and fails with the error of that open if it fails again.
 */
export class FileDataAppender implements DataAppender {
  readonly #path: string
  /** The open started at construction: its file descriptor, `undefined` if it failed; never rejects. */
  #opening: Promise<number | undefined> | undefined

  constructor (path: string, created: boolean) {
    this.#path = path
    this.#opening = created ? undefined : openFile(path, EXISTING_FOR_APPEND).catch(() => undefined)
  }

  async append (source: Readable, options: AppendOptions): Promise<AppendResult> {
    const fd = await this.#take() ?? await openFile(this.#path, 'a')
    try {
      return await appendStream(fd, source, options)
    } finally {
      await closeFile(fd)
    }
  }

  async close (): Promise<void> {
    const fd = await this.#take()
    // nothing was written through it: an error closing it loses nothing, and must not keep the caller from its lock
    if (fd !== undefined) await new Promise<void>((resolve) => { close(fd, () => { resolve() }) })
  }

  /** The open started at construction, once: whoever takes it closes its file. */
  #take (): Promise<number | undefined> | undefined {
    const opening = this.#opening
    this.#opening = undefined
    return opening
  }
}
