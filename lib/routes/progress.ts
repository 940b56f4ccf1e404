import { toResource } from '../resource.js'
import type { Upload } from '../store/store.js'
import type { TusContext, TusRequest } from './context.js'

/** What sees a body's chunks as they are kept, and is told when the body stopped. */
export interface ProgressReporter {
  readonly observe: (chunk: Buffer) => void
  readonly finish: (upload: Upload) => void
}

/**
 * `onUploadProgress` for one body: called with the bytes received so far at most
 * once per `progressInterval`, and once more when the body stopped. An error it
 * throws is logged, never let loose on the stream.
 */
export function progressReporter (context: TusContext, request: TusRequest, upload: Upload): ProgressReporter | undefined {
  const { onUploadProgress, progressInterval } = context.options
  if (onUploadProgress === undefined) return undefined
  const report = (offset: number): void => {
    try {
      onUploadProgress(request, toResource(upload.record, offset))
    } catch (error) {
      request.log.error({ err: error }, 'fastify-tus: onUploadProgress failed')
    }
  }
  let offset = upload.offset
  let last = Date.now()
  return {
    observe: (chunk) => {
      offset += chunk.length
      const now = Date.now()
      if (now - last < progressInterval) return
      last = now
      report(offset)
    },
    finish: (finished) => { report(finished.offset) }
  }
}
