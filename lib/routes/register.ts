import type { FastifyError, FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import { Type, type TObject } from '@sinclair/typebox'
import { errors } from '../errors.js'
import { DRAFT_VERSIONS, draftVersionOf } from '../protocol/draft.js'
import { TUS_VERSION, announcedBodyLength } from '../protocol/headers.js'
import { RouteParam, UploadId } from '../protocol/params.js'
import type { TusContext, TusRequest } from './context.js'
import { draftProtocol, unsupportedDraft } from './draft/protocol.js'
import { resolveMaxSize } from './max-size.js'
import { tus, type Handler, type Operation, type Protocol } from './protocol.js'
import { tusValidatorCompiler } from './validation.js'

/** The router constraint that sends requests with `Upload-Draft-Interop-Version` to the draft's routes. */
const DRAFT_CONSTRAINT = 'tusDraftInteropVersion'

/** Where one registration's routes are, and the schemas of their route params. */
interface Urls {
  readonly creation: readonly string[]
  readonly creationParams: TObject | undefined
  readonly resource: string | undefined
  readonly resourceParams: TObject
}

/**
 * The routes of one registration, in their own encapsulated context: request
 * bodies reach the handlers as unread streams, headers are checked by TypeBox
 * with the protocol's status codes, and every answer carries `Tus-Resumable`.
 * The same URLs speak tus 1.0 and, to requests that carry its interop version,
 * the IETF resumable-upload draft.
 */
export function tusRoutes (context: TusContext): FastifyPluginCallback {
  return (scope, _options, done) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, body, parsed) => { parsed(null, body) })
    scope.setValidatorCompiler(tusValidatorCompiler)
    scope.addHook('onSend', tusResponseHeaders)
    scope.setErrorHandler(storageErrors)
    const { maxSize } = context.options
    if (typeof maxSize === 'function') scope.addHook('preHandler', resolveMaxSize(maxSize))

    const { uploadUrl, creationRoute } = context.options
    const routeParams = Object.fromEntries(creationRoute.params.map((name) => [name, RouteParam]))
    const urls: Urls = {
      creation: [uploadUrl === '' ? '/' : uploadUrl],
      creationParams: creationRoute.params.length > 0 ? Type.Object(routeParams) : undefined,
      resource: `${uploadUrl}/:uid`,
      resourceParams: Type.Object({ ...routeParams, uid: UploadId })
    }
    addProtocolRoutes(scope, context, urls, tus)
    // `/uploads/` too, unless the router serves it already (ignoreTrailingSlash, or the prefix's own `/`)
    const withSlash = `${uploadUrl}/`
    const creation = scope.hasRoute({ method: 'POST', url: scope.prefix + withSlash }) ? urls.creation : [...urls.creation, withSlash]
    if (creation.length > 1) addProtocolRoutes(scope, context, { ...urls, creation: [withSlash], resource: undefined }, tus)
    if (context.options.ietfDraft) {
      addDraftConstraint(scope)
      for (const version of DRAFT_VERSIONS) addProtocolRoutes(scope, context, { ...urls, creation }, draftProtocol(version), version)
      addProtocolRoutes(scope, context, { ...urls, creation }, unsupportedDraft, 'unsupported')
    }
    done()
  }
}

/**
 * Routes one protocol's operations: every one but OPTIONS guarded by the
 * `onRequest` option, and those that write a body (POST and PATCH) admitted by
 * the count of bodies in flight, after the guards and `maxSize`.
 */
function addProtocolRoutes (scope: FastifyInstance, context: TusContext, urls: Urls, protocol: Protocol, draft?: string): void {
  const constraints = draft === undefined ? {} : { constraints: { [DRAFT_CONSTRAINT]: draft } }
  const bound = (handler: Handler) => (request: FastifyRequest, reply: FastifyReply) => handler(context, request as TusRequest, reply)
  const admitted: preHandlerHookHandler = (request, reply, done) => {
    context.bodies.admit(request, reply) // a throw is Fastify's to answer
    done()
  }
  const guarded = (operation: Operation, params: TObject | undefined, preHandler?: preHandlerHookHandler) => ({
    ...constraints,
    onRequest: context.options.onRequest,
    preHandler,
    schema: params === undefined ? { headers: operation.headers } : { headers: operation.headers, params }
  })
  for (const url of urls.creation) {
    scope.options(url, constraints, bound(protocol.describe))
    scope.post(url, guarded(protocol.create, urls.creationParams, admitted), bound(protocol.create.handle))
  }
  if (urls.resource === undefined) return
  scope.options(urls.resource, constraints, bound(protocol.describe))
  scope.head(urls.resource, guarded(protocol.head, urls.resourceParams), bound(protocol.head.handle))
  scope.patch(urls.resource, guarded(protocol.patch, urls.resourceParams, admitted), bound(protocol.patch.handle))
  scope.delete(urls.resource, guarded(protocol.terminate, urls.resourceParams), bound(protocol.terminate.handle))
  scope.post(urls.resource, guarded(protocol.override, urls.resourceParams, admitted), bound(protocol.override.handle))
}

type ConstraintStrategy = Parameters<FastifyInstance['addConstraintStrategy']>[0]
type RouteHandler = NonNullable<ReturnType<ReturnType<ConstraintStrategy['storage']>['get']>>

/** Requests with `Upload-Draft-Interop-Version` go to the routes of their version (`unsupported` for others). */
function addDraftConstraint (scope: FastifyInstance): void {
  if (scope.hasConstraintStrategy(DRAFT_CONSTRAINT)) return
  scope.addConstraintStrategy({
    name: DRAFT_CONSTRAINT,
    storage () {
      const handlers = new Map<unknown, RouteHandler>()
      return { get: (value: unknown) => handlers.get(value) ?? null, set: (value: unknown, handler: RouteHandler) => { handlers.set(value, handler) } }
    },
    deriveConstraint: (request) => draftVersionOf(request.headers['upload-draft-interop-version']),
    mustMatchWhenDerived: false
  })
}

const FULL_DISK = new Set(['ENOSPC', 'EDQUOT'])

/**
 * Storage failures get their own answer wherever they strike: a full disk or
 * quota is a 507, an I/O error a 500 that says so. Every other error goes on
 * to the app's error handler.
 */
function storageErrors (error: FastifyError): never {
  if (FULL_DISK.has(error.code)) throw new errors.FST_TUS_INSUFFICIENT_STORAGE()
  if (error.code === 'EIO') throw new errors.FST_TUS_IO_ERROR()
  throw error
}

/**
 * Every answer says `Tus-Resumable`; a 412 also says which version is spoken.
 * An HTTP/1 answer given before the request body was fully received closes the
 * connection, so that the unread body cannot be taken for the next request
 * (HTTP/2 has no such header: its stream is reset after the answer).
 */
const tusResponseHeaders: onSendHookHandler = (request, reply, payload, done) => {
  reply.header('tus-resumable', TUS_VERSION)
  if (reply.statusCode === 412) reply.header('tus-version', TUS_VERSION)
  if (request.raw.complete === false && request.raw.httpVersionMajor === 1 && announcedBodyLength(request.headers) !== 0) {
    reply.header('connection', 'close')
  }
  done(null, payload)
}
