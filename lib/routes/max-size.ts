import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { errors } from '../errors.js'
import type { TusContext } from './context.js'

/** The maximum size a `maxSize` function gave each request. */
const resolved = new WeakMap<FastifyRequest, number>()

/**
 * With `maxSize` a function of the request (per-user quotas), a preHandler
 * resolves it once per request: after the guards, so it can use what they
 * learned of the user.
 */
export function resolveMaxSize (maxSize: (request: FastifyRequest) => number | Promise<number>): preHandlerAsyncHookHandler {
  return async (request) => {
    const size = await maxSize(request)
    if (!Number.isSafeInteger(size) || size <= 0) throw new errors.FST_TUS_MAX_SIZE_FUNCTION(String(size))
    resolved.set(request, size)
  }
}

/** The largest upload this request may make; `undefined` when there is no limit. */
export function maxSizeOf (context: TusContext, request: FastifyRequest): number | undefined {
  const { maxSize } = context.options
  return typeof maxSize === 'function' ? resolved.get(request) : maxSize
}
