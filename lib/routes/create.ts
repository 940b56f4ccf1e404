import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../errors.js'
import { stopSignalOf } from '../lock/locker.js'
import { DeferLength, MetadataHeader, NonNegativeInteger, TusResumable, isOffsetOctetStream, parseInteger } from '../protocol/headers.js'
import { parseConcat, type ConcatRequest } from '../protocol/concat.js'
import type { Upload } from '../store/store.js'
import { planChecksum, type ChecksumPlan } from './checksum.js'
import { completeIfDone } from './complete.js'
import { createFinal, finishFinalsOf } from './concat.js'
import { setUploadExpires } from './expiration.js'
import { lockKey, uploadDirectory, type TusContext, type TusRequest } from './context.js'
import { location, newRecord } from './new-upload.js'
import { checkBodyFits, checkLengthAllowed, receiveBody, stoppedEarly } from './receive-body.js'

export const createHeaders = Type.Object({
  'tus-resumable': TusResumable,
  'upload-length': Type.Optional(NonNegativeInteger),
  'upload-defer-length': Type.Optional(DeferLength),
  'upload-metadata': Type.Optional(MetadataHeader),
  'x-http-method-override': Type.Optional(Type.Literal('POST', { description: 'POST on the creation URL' }))
})

/**
 * POST (creation, creation-with-upload, creation-defer-length): checks the
 * request, persists the upload, stores a body sent with it, and answers 201
 * with the upload's `Location`.
 */
export async function create (context: TusContext, request: TusRequest, reply: FastifyReply): Promise<void> {
  const { headers } = request
  const concat = concatOf(context, headers['upload-concat'])
  if (concat?.kind === 'final') return await createFinal(context, request, reply, concat.urls)
  const fileSize = announcedLength(context, request)
  const record = await newRecord(context, request, fileSize, { concat })
  const withBody = request.body !== undefined
  if (withBody) checkBodyAllowed(context, headers['content-type'])
  const checksum = withBody ? planChecksum(context, request) : undefined
  const directory = uploadDirectory(context, request)
  const created: Upload = { record, offset: 0, lastActivity: Date.now() }
  if (withBody) checkBodyFits(context, request, created)
  const upload = withBody
    ? await createWithBody(context, request, reply, directory, created, checksum)
    : await createWithoutBody(context, request, reply, directory, created)
  await finishFinalsOf(context, request, directory, upload)
  reply.code(201).send()
}

/**
 * A creation without a body stores the upload, and completes it at once when
 * it is empty, without taking its lock: until this request is answered nobody
 * else knows the upload's URL, so nobody else can write to it (a file lock
 * would cost a creation a dozen file calls).
 */
async function createWithoutBody (context: TusContext, request: TusRequest, reply: FastifyReply, directory: string, created: Upload): Promise<Upload> {
  await context.store.create(directory, created.record)
  reply.header('location', location(context, request, created.record.uid))
  const upload = await completeIfDone(context, request, directory, created)
  setUploadExpires(context, reply, upload)
  return upload
}

/** creation-with-upload: the upload stored and its first bytes received under its lock. */
async function createWithBody (
  context: TusContext, request: TusRequest, reply: FastifyReply, directory: string, created: Upload, checksum: ChecksumPlan | undefined
): Promise<Upload> {
  const { uid } = created.record
  const lock = await context.locker.acquire(lockKey(directory, uid))
  const data = context.store.openData(directory, uid, true)
  try {
    await context.store.create(directory, created.record)
    reply.header('location', location(context, request, uid))
    const { upload, end } = await receiveBody(context, request, directory, created, data, stopSignalOf(lock), checksum)
    reply.header('upload-offset', upload.offset)
    setUploadExpires(context, reply, upload)
    const error = stoppedEarly(context, request, upload, end)
    if (error !== undefined) throw error
    return upload
  } finally {
    await data.close()
    await lock.release()
  }
}

/** `Upload-Concat`, when the concatenation extension is on. */
function concatOf (context: TusContext, value: string | undefined): ConcatRequest | undefined {
  if (value === undefined) return undefined
  if (!context.options.extensions.has('concatenation')) throw new errors.FST_TUS_EXTENSION_DISABLED('concatenation')
  return parseConcat(value)
}

/** `Upload-Length`, or `null` for `Upload-Defer-Length: 1`: exactly one of them, within the maximum size. */
function announcedLength (context: TusContext, request: TusRequest): number | null {
  const { 'upload-length': length, 'upload-defer-length': deferred } = request.headers
  if (length === undefined) {
    if (deferred === undefined) throw new errors.FST_TUS_LENGTH_REQUIRED()
    if (!context.options.extensions.has('creation-defer-length')) throw new errors.FST_TUS_EXTENSION_DISABLED('creation-defer-length')
    return null
  }
  if (deferred !== undefined) throw new errors.FST_TUS_LENGTH_CONFLICT()
  const fileSize = parseInteger('upload-length', length)
  checkLengthAllowed(context, request, fileSize)
  return fileSize
}

/** A body on a creation request: creation-with-upload, as application/offset+octet-stream. */
function checkBodyAllowed (context: TusContext, contentType: string | undefined): void {
  if (!context.options.extensions.has('creation-with-upload')) throw new errors.FST_TUS_EXTENSION_DISABLED('creation-with-upload')
  if (!isOffsetOctetStream(contentType)) throw new errors.FST_TUS_UNSUPPORTED_MEDIA_TYPE(JSON.stringify(contentType ?? 'nothing'))
}
