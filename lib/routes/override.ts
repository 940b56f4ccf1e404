import type { FastifyReply } from 'fastify'
import type { TusContext, TusRequest, UploadParams } from './context.js'
import type { Handler, Operation } from './protocol.js'
import { compileHeaderCheck } from './validation.js'

/**
 * POST with `X-HTTP-Method-Override` on an upload URL, for clients and proxies
 * that speak only GET and POST: handled exactly as the method it names, with
 * that method's header rules.
 */
export function overrideFor (protocol: { head: Operation, patch: Operation, terminate: Operation }): Handler {
  const methods = Object.fromEntries(Object.entries({ PATCH: protocol.patch, HEAD: protocol.head, DELETE: protocol.terminate })
    .map(([name, operation]) => [name, { check: compileHeaderCheck(operation.headers), handle: operation.handle }]))
  return async (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> => {
    const method = methods[request.headers['x-http-method-override'] as string] as (typeof methods)[string]
    const error = method.check(request.headers)
    if (error !== undefined) throw error
    await method.handle(context, request, reply)
  }
}
