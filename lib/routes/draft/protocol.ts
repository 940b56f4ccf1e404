import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import { errors } from '../../errors.js'
import type { DraftVersion } from '../../protocol/draft.js'
import { MethodOverride } from '../../protocol/headers.js'
import type { TusContext, TusRequest, UploadParams } from '../context.js'
import { terminate } from '../delete.js'
import { describe } from '../options.js'
import { withOverride, type Handler, type Protocol } from '../protocol.js'
import { draftAppend, draftAppendHeaders } from './append.js'
import { draftCreate, draftCreateHeaders } from './create.js'
import { draftOffset, draftStatelessHeaders } from './offset.js'
import { limitsOf } from './respond.js'

type DraftHandler = (version: DraftVersion, context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply) => Promise<void>

/** How interop version `version` of the resumable-upload draft serves an endpoint. */
export function draftProtocol (version: DraftVersion): Protocol {
  const bind = (handler: DraftHandler): Handler => (context, request, reply) => handler(version, context, request, reply)
  return withOverride({
    describe: async (context, request, reply) => {
      const limit = limitsOf(context, request, version)
      if (limit !== undefined) reply.header('upload-limit', limit)
      await describe(context, request, reply)
    },
    create: { headers: draftCreateHeaders, handle: bind(draftCreate) },
    head: { headers: draftStatelessHeaders(version, 'HEAD'), handle: bind(draftOffset) },
    patch: { headers: draftAppendHeaders(version), handle: bind(draftAppend) },
    terminate: { headers: draftStatelessHeaders(version, 'DELETE'), handle: terminate }
  }, Type.Object({ 'x-http-method-override': MethodOverride }))
}

/** A request in an interop version this server does not speak: a 400 that says which it does, for every method but OPTIONS. */
export const unsupportedDraft: Protocol = (() => {
  const refuse = { headers: Type.Object({}), handle: async (_context: TusContext, request: TusRequest) => { throw new errors.FST_TUS_DRAFT_VERSION(request.headers['upload-draft-interop-version'] as string) } }
  return { describe, create: refuse, head: refuse, patch: refuse, terminate: refuse, override: refuse }
})()
