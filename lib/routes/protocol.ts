import type { FastifyReply } from 'fastify'
import { Type, type TObject } from '@sinclair/typebox'
import { MethodOverride, TusResumable } from '../protocol/headers.js'
import type { TusContext, TusRequest } from './context.js'
import { create, createHeaders } from './create.js'
import { deleteHeaders, terminate } from './delete.js'
import { head, headHeaders } from './head.js'
import { describe } from './options.js'
import { overrideFor } from './override.js'
import { patch, patchHeaders } from './patch.js'

export type Handler = (context: TusContext, request: TusRequest<any>, reply: FastifyReply) => Promise<void>

/** A request handler with the schema of the headers it takes. */
export interface Operation {
  readonly headers: TObject
  readonly handle: Handler
}

/**
 * How one protocol serves the routes of an endpoint: tus 1.0, or a version of
 * the IETF resumable-upload draft. `override` serves a POST to an upload that
 * names another method in `X-HTTP-Method-Override`.
 */
export interface Protocol {
  readonly describe: Handler
  readonly create: Operation
  readonly head: Operation
  readonly patch: Operation
  readonly terminate: Operation
  readonly override: Operation
}

/** A protocol whose override POST is served as the method it names, with that method's header rules. */
export function withOverride (operations: Omit<Protocol, 'override'>, overrideHeaders: TObject): Protocol {
  return { ...operations, override: { headers: overrideHeaders, handle: overrideFor(operations) } }
}

export const tus: Protocol = withOverride({
  describe,
  create: { headers: createHeaders, handle: create },
  head: { headers: headHeaders, handle: head },
  patch: { headers: patchHeaders, handle: patch },
  terminate: { headers: deleteHeaders, handle: terminate }
}, Type.Object({ 'tus-resumable': TusResumable, 'x-http-method-override': MethodOverride }))
