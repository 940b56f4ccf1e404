import type { FastifyError, FastifyPluginCallback, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify'
import { errors } from '../errors.js'
import { Type, type TObject } from '@sinclair/typebox'
import { TUS_VERSION, announcedBodyLength } from '../protocol/headers.js'
import { RouteParam, UploadId } from '../protocol/params.js'
import type { TusContext, TusRequest } from './context.js'
import { create, createHeaders } from './create.js'
import { deleteHeaders, terminate } from './delete.js'
import { head, headHeaders } from './head.js'
import { describe } from './options.js'
import { override, overrideHeaders } from './override.js'
import { patch, patchHeaders } from './patch.js'
import { tusValidatorCompiler } from './validation.js'

type Handler = (context: TusContext, request: TusRequest<any>, reply: FastifyReply) => Promise<void>

/**
 * The routes of one registration, in their own encapsulated context: request
 * bodies reach the handlers as unread streams, headers are checked by TypeBox
 * with the protocol's status codes, and every answer carries `Tus-Resumable`.
 */
export function tusRoutes (context: TusContext): FastifyPluginCallback {
  return (scope, _options, done) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, body, parsed) => { parsed(null, body) })
    scope.setValidatorCompiler(tusValidatorCompiler)
    scope.addHook('onSend', tusResponseHeaders)
    scope.setErrorHandler(fullDiskIs507)

    const { uploadUrl, onRequest, creationRoute } = context.options
    const bound = (handler: Handler) => (request: FastifyRequest, reply: FastifyReply) => handler(context, request as TusRequest, reply)
    const routeParams = Object.fromEntries(creationRoute.params.map((name) => [name, RouteParam]))
    const creationParams = creationRoute.params.length > 0 ? { params: Type.Object(routeParams) } : {}
    const uploadParams = { params: Type.Object({ ...routeParams, uid: UploadId }) }
    const guarded = (headers: TObject, params: { params?: TObject }) => ({ onRequest, schema: { headers, ...params } })

    const addCreationRoutes = (url: string): void => {
      scope.options(url, bound(describe))
      scope.post(url, guarded(createHeaders, creationParams), bound(create))
    }
    addCreationRoutes(uploadUrl === '' ? '/' : uploadUrl)
    // `/uploads/` too, unless the router already serves it (ignoreTrailingSlash, or the prefix's own `/`)
    if (!scope.hasRoute({ method: 'POST', url: `${scope.prefix}${uploadUrl}/` })) addCreationRoutes(`${uploadUrl}/`)
    const resource = `${uploadUrl}/:uid`
    scope.options(resource, bound(describe))
    scope.head(resource, guarded(headHeaders, uploadParams), bound(head))
    scope.patch(resource, guarded(patchHeaders, uploadParams), bound(patch))
    scope.delete(resource, guarded(deleteHeaders, uploadParams), bound(terminate))
    scope.post(resource, guarded(overrideHeaders, uploadParams), bound(override))
    done()
  }
}

const FULL_DISK = new Set(['ENOSPC', 'EDQUOT'])

/** A full disk or quota is a 507 wherever it strikes; every other error goes on to the app's error handler. */
function fullDiskIs507 (error: FastifyError): never {
  if (FULL_DISK.has(error.code)) throw new errors.FST_TUS_INSUFFICIENT_STORAGE()
  throw error
}

/**
 * Every answer says `Tus-Resumable`; a 412 also says which version is spoken.
 * An answer given before the request body was fully received closes the
 * connection, so that the unread body cannot be taken for the next request.
 */
const tusResponseHeaders: onSendHookHandler = (request, reply, payload, done) => {
  reply.header('tus-resumable', TUS_VERSION)
  if (reply.statusCode === 412) reply.header('tus-version', TUS_VERSION)
  if (request.raw.complete === false && announcedBodyLength(request.headers) !== 0) reply.header('connection', 'close')
  done(null, payload)
}
