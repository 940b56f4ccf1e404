import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { MethodOverride, TusResumable } from '../protocol/headers.js'
import type { TusContext, TusRequest, UploadParams } from './context.js'
import { terminate, deleteHeaders } from './delete.js'
import { head, headHeaders } from './head.js'
import { patch, patchHeaders } from './patch.js'
import { compileHeaderCheck, type RequestCheck } from './validation.js'

export const overrideHeaders = Type.Object({
  'tus-resumable': TusResumable,
  'x-http-method-override': MethodOverride
})

type UploadHandler = (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply) => Promise<void>

const methods: Record<string, { check: RequestCheck, handle: UploadHandler }> = {
  PATCH: { check: compileHeaderCheck(patchHeaders), handle: patch },
  HEAD: { check: compileHeaderCheck(headHeaders), handle: head },
  DELETE: { check: compileHeaderCheck(deleteHeaders), handle: terminate }
}

/**
 * POST with `X-HTTP-Method-Override` on an upload URL, for clients and proxies
 * that speak only GET and POST: handled exactly as the method it names.
 */
export async function override (context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const method = methods[request.headers['x-http-method-override'] as string] as (typeof methods)[string]
  const error = method.check(request.headers)
  if (error !== undefined) throw error
  await method.handle(context, request, reply)
}
