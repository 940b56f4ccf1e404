import type { FastifyRequest } from 'fastify'
import { join } from 'node:path'
import { errors } from '../errors.js'
import type { Locker } from '../lock/locker.js'
import type { ResolvedOptions } from '../options.js'
import type { Upload, UploadStore } from '../store/store.js'
import type { RoutePattern } from '../route-pattern.js'
import { STATE_DIR } from '../store/paths.js'
import type { BodyRequests } from './body-requests.js'
import { isExpired } from './expiration.js'

/** What the handlers of one plugin registration share. */
export interface TusContext {
  readonly options: ResolvedOptions
  readonly store: UploadStore
  readonly locker: Locker
  /** The upload route, filled in for `Location`. */
  readonly resourceRoute: RoutePattern
  readonly resourceRouteName: string
  /** Aborts when the app closes: every body still streaming stops, its bytes kept. */
  readonly closing: AbortSignal
  readonly bodies: BodyRequests
}

export type RouteParams = Record<string, string>
export interface UploadParams extends RouteParams { uid: string }

export type TusRequest<Params extends RouteParams = RouteParams> = FastifyRequest<{
  Params: Params
  Headers: Record<string, string | undefined>
  Body: unknown
}>

/** The upload directory a request's route params select. */
export function uploadDirectory (context: TusContext, request: TusRequest): string {
  return context.options.uploadPath.resolve(request.params)
}

/** The key that the locker knows an upload by: the path a file locker makes its lock at. */
export function lockKey (directory: string, uid: string): string {
  return join(directory, STATE_DIR, `${uid}.lock`)
}

/** The upload with that id in that directory; a 404 when there is none, a 410 when it expired. */
export async function loadUpload (context: TusContext, directory: string, uid: string): Promise<Upload> {
  return found(context, await context.store.load(directory, uid))
}

/** loadUpload for an answer that changes nothing: the store may take what it read before (UploadStore.peek). */
export async function peekUpload (context: TusContext, directory: string, uid: string): Promise<Upload> {
  return found(context, await context.store.peek(directory, uid))
}

function found (context: TusContext, upload: Upload | undefined): Upload {
  if (upload === undefined) throw new errors.FST_TUS_UPLOAD_NOT_FOUND()
  if (isExpired(context, upload, Date.now())) throw new errors.FST_TUS_UPLOAD_EXPIRED()
  return upload
}
