import type { FastifyReply } from 'fastify'
import { errors } from '../errors.js'
import { stopSignalOf } from '../lock/locker.js'
import { UploadId } from '../protocol/params.js'
import type { Upload, UploadRecord } from '../store/store.js'
import { completeIfDone } from './complete.js'
import { lockKey, uploadDirectory, type TusContext, type TusRequest } from './context.js'
import { location, newRecord } from './new-upload.js'
import { checkLengthAllowed } from './receive-body.js'

const uploadId = new RegExp(UploadId.pattern as string)

/**
 * POST with `Upload-Concat: final;<url> ...`: a final upload made of partial
 * uploads of this endpoint, in order. Its length is theirs together. If they are
 * all complete it is assembled at once; with concatenation-unfinished it may
 * name partials still uploading, and is assembled when the last one completes.
 */
export async function createFinal (context: TusContext, request: TusRequest, reply: FastifyReply, urls: readonly string[]): Promise<void> {
  const { headers } = request
  if (headers['upload-length'] !== undefined || headers['upload-defer-length'] !== undefined) {
    throw new errors.FST_TUS_INVALID_CONCAT('a final upload takes its length from its partial uploads')
  }
  if (request.body !== undefined) throw new errors.FST_TUS_INVALID_CONCAT('a final upload cannot carry data')
  const directory = uploadDirectory(context, request)
  const partialIds = urls.map((url) => partialIdOf(context, request, url))
  const partials = await Promise.all(partialIds.map((uid) => loadPartial(context, directory, uid)))
  const unfinished = partials.find((partial) => !partial.record.completed)
  if (unfinished !== undefined && !context.options.extensions.has('concatenation-unfinished')) {
    throw new errors.FST_TUS_INVALID_CONCAT(`the partial upload ${unfinished.record.uid} is not complete`)
  }
  const fileSize = partials.reduce((sum, partial) => sum + (partial.record.fileSize as number), 0)
  checkLengthAllowed(context, request, fileSize)
  const record = await newRecord(context, request, fileSize, { concat: { kind: 'final', partials: partialIds, header: headers['upload-concat'] as string } })
  await context.store.create(directory, record)
  // noted before the partials are looked at again, so that a partial completing meanwhile finds this final
  for (const uid of new Set(partialIds)) await context.store.addFinal(directory, uid, record.uid)
  reply.header('location', location(context, request, record.uid))
  await assembleFinal(context, request, directory, record.uid)
  reply.code(201).send()
}

/** After a partial upload completed: assembles the final uploads that were waiting for it. */
export async function finishFinalsOf (context: TusContext, request: TusRequest, directory: string, partial: Upload): Promise<void> {
  if (!partial.record.completed || partial.record.concat?.kind !== 'partial') return
  for (const uid of await context.store.finalsOf(directory, partial.record.uid)) {
    await assembleFinal(context, request, directory, uid)
  }
}

/**
 * Assembles a final upload whose partials are all complete, completes it (its
 * file in place, `onUploadDone` called) and removes the partials no other
 * final waits for. A final still waiting, done already, or whose assembly was
 * taken over by a newer request is left as it is. A partial whose data cannot
 * be read makes the final a 410: it can never complete.
 */
export async function assembleFinal (context: TusContext, request: TusRequest, directory: string, uid: string): Promise<void> {
  const lock = await context.locker.acquire(lockKey(directory, uid))
  const taken = [lock]
  try {
    const final = await context.store.load(directory, uid)
    if (final === undefined || final.record.completed) return
    const ids = [...new Set(partialsOf(final.record))]
    const partials = await Promise.all(ids.map((id) => context.store.load(directory, id)))
    if (partials.includes(undefined)) throw new errors.FST_TUS_CONCAT_BROKEN()
    if (partials.some((partial) => !(partial as Upload).record.completed)) return
    for (const id of ids) taken.push(await context.locker.acquire(lockKey(directory, id)))
    const { written, end } = await context.store.concatenate(directory, final.record, { signals: [stopSignalOf(lock), context.closing], idleTimeout: context.options.idleTimeout })
    if (end === 'interrupted') return
    if (end === 'broke') throw new errors.FST_TUS_CONCAT_BROKEN()
    await completeIfDone(context, request, directory, { ...final, offset: written, lastActivity: Date.now() })
    for (const partial of partials as Upload[]) await removeIfUnwanted(context, directory, partial.record, uid)
  } finally {
    await Promise.all(taken.map((held) => held.release()))
  }
}

/** A final upload still waiting for a partial upload that is gone (expired, or terminated): it can never complete. */
export async function isBrokenFinal (context: TusContext, directory: string, upload: Upload): Promise<boolean> {
  if (upload.record.concat?.kind !== 'final' || upload.record.completed) return false
  const partials = await Promise.all(partialsOf(upload.record).map((id) => context.store.load(directory, id)))
  return partials.includes(undefined)
}

/** The ids of a final upload's partials, in order. */
export function partialsOf (record: UploadRecord): readonly string[] {
  return (record.concat as { partials: readonly string[] }).partials
}

/** Removes a partial upload once no final upload but `done` still waits for it. */
async function removeIfUnwanted (context: TusContext, directory: string, partial: UploadRecord, done: string): Promise<void> {
  for (const uid of await context.store.finalsOf(directory, partial.uid)) {
    if (uid === done) continue
    const other = await context.store.load(directory, uid)
    if (other !== undefined && !other.record.completed) return
  }
  await context.store.remove(directory, partial)
}

/** The id of a partial upload named by URL: it must be an upload of this endpoint, under the same route params. */
function partialIdOf (context: TusContext, request: TusRequest, url: string): string {
  const pathname = URL.canParse(url, 'http://relative.invalid') ? new URL(url, 'http://relative.invalid').pathname : ''
  const uid = pathname.slice(pathname.lastIndexOf('/') + 1)
  if (!uploadId.test(uid) || pathname !== context.resourceRoute.fill(context.resourceRouteName, { ...request.params, uid })) {
    throw new errors.FST_TUS_INVALID_CONCAT(`${url} is not an upload of this endpoint`)
  }
  return uid
}

async function loadPartial (context: TusContext, directory: string, uid: string): Promise<Upload> {
  const upload = await context.store.load(directory, uid)
  if (upload === undefined) throw new errors.FST_TUS_INVALID_CONCAT(`the partial upload ${uid} does not exist`)
  if (upload.record.concat?.kind !== 'partial') throw new errors.FST_TUS_INVALID_CONCAT(`${uid} is not a partial upload`)
  if (upload.record.fileSize === null) throw new errors.FST_TUS_INVALID_CONCAT(`the partial upload ${uid} has no length yet`)
  return upload
}
