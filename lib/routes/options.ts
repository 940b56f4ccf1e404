import type { FastifyReply } from 'fastify'
import { TUS_VERSION } from '../protocol/headers.js'
import type { TusContext } from './context.js'

/** The tus extensions this server speaks, as `Tus-Extension` lists them. */
export const EXTENSIONS = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination'] as const

/** OPTIONS: what the server supports. Never guarded, never needs `Tus-Resumable`. */
export async function describe (context: TusContext, _request: unknown, reply: FastifyReply): Promise<void> {
  reply.header('tus-version', TUS_VERSION)
  reply.header('tus-extension', EXTENSIONS.join(','))
  if (context.options.maxSize !== undefined) reply.header('tus-max-size', context.options.maxSize)
  reply.code(204).send()
}
