import type { FastifyReply } from 'fastify'
import { EXTENSIONS } from '../protocol/extensions.js'
import { TUS_VERSION } from '../protocol/headers.js'
import type { TusContext, TusRequest } from './context.js'
import { maxSizeOf } from './max-size.js'

/** OPTIONS: what the server supports. Never guarded, never needs `Tus-Resumable`. */
export async function describe (context: TusContext, request: TusRequest, reply: FastifyReply): Promise<void> {
  const { extensions, checksumAlgorithms } = context.options
  const maxSize = maxSizeOf(context, request)
  reply.header('tus-version', TUS_VERSION)
  reply.header('tus-extension', EXTENSIONS.filter((name) => extensions.has(name)).join(','))
  if (maxSize !== undefined) reply.header('tus-max-size', maxSize)
  if (extensions.has('checksum')) reply.header('tus-checksum-algorithm', checksumAlgorithms.join(','))
  reply.code(204).send()
}
