import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { sfBoolean, uploadLimit, type DraftVersion } from '../../protocol/draft.js'
import type { Upload } from '../../store/store.js'
import type { TusContext, TusRequest } from '../context.js'
import { expiresAt } from '../expiration.js'
import { maxSizeOf } from '../max-size.js'

/** The upload's state as the draft reports it: offset, completeness, length when known, limits. */
export function setDraftState (context: TusContext, request: TusRequest, reply: FastifyReply, version: DraftVersion, upload: Upload): void {
  reply.header('upload-offset', upload.offset)
  reply.header('upload-complete', sfBoolean(upload.record.completed))
  if (upload.record.fileSize !== null) reply.header('upload-length', upload.record.fileSize)
  const limit = limitsOf(context, request, version, upload)
  if (limit !== undefined) reply.header('upload-limit', limit)
}

/** `Upload-Limit` for an upload (its remaining lifetime counted), or for the endpoint when there is none yet. */
export function limitsOf (context: TusContext, request: TusRequest, version: DraftVersion, upload?: Upload): string | undefined {
  const { expiration } = context.options
  const maxSize = maxSizeOf(context, request)
  const expires = upload === undefined ? undefined : expiresAt(context, upload)
  const secondsLeft = upload === undefined
    ? expiration === undefined ? undefined : expiration / 1000
    : expires === undefined ? undefined : (expires - Date.now()) / 1000
  return uploadLimit(version, maxSize, secondsLeft)
}

/** An RFC 9457 problem: `application/problem+json`. */
export function sendProblem (reply: FastifyReply, status: number, problem: object): void {
  reply.code(status).type('application/problem+json').send(JSON.stringify(problem))
}

type InterimResponse = ServerResponse & {
  _writeRaw?: (data: string, encoding: BufferEncoding) => boolean
  stream?: { additionalHeaders: (headers: Record<string, string | number>) => void }
}

/**
 * `104 Upload Resumption Supported` before the body is read: the upload's URL,
 * so that a client cut off mid-body can resume at once. Node has no public API
 * for an arbitrary 1xx over HTTP/1.1; its own 100/102/103 go through `_writeRaw`.
 * Never to an HTTP/1.0 client, which cannot take a 1xx.
 */
export function sendUploadResumptionSupported (request: TusRequest, reply: FastifyReply, headers: Record<string, string>): void {
  const raw = reply.raw as InterimResponse
  if (request.raw.httpVersion === '1.0') return
  if (raw.stream !== undefined) {
    raw.stream.additionalHeaders({ ':status': 104, ...headers })
    return
  }
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  raw._writeRaw?.(`HTTP/1.1 104 Upload Resumption Supported\r\n${lines}\r\n`, 'latin1')
}
