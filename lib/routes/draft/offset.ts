import type { FastifyReply } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { DraftVersion } from '../../protocol/draft.js'
import type { TusContext, TusRequest, UploadParams } from '../context.js'
import { currentUpload } from '../head.js'
import { setDraftState } from './respond.js'

const absent = (name: string): ReturnType<typeof Type.Optional> => Type.Optional(Type.Never({ description: `no ${name} on this request` }))

/** Versions 5 and 6 refuse offset retrieval and cancellation requests that carry upload state (400). */
export const draftStatelessHeaders = (version: DraftVersion, method: 'HEAD' | 'DELETE'): ReturnType<typeof Type.Object> => version === '8'
  ? Type.Object({})
  : Type.Object({
    'upload-offset': absent('Upload-Offset'),
    'upload-complete': absent('Upload-Complete'),
    ...(version === '6' && method === 'HEAD' ? { 'upload-length': absent('Upload-Length') } : {})
  })

/** Offset retrieval by the draft: 204 with the upload's state, never cached. */
export async function draftOffset (version: DraftVersion, context: TusContext, request: TusRequest<UploadParams>, reply: FastifyReply): Promise<void> {
  const upload = await currentUpload(context, request)
  reply.header('cache-control', 'no-store')
  setDraftState(context, request, reply, version, upload)
  reply.code(204).send()
}
