import { Type, type TSchema } from '@sinclair/typebox'
import { errors } from '../errors.js'

export const TUS_VERSION = '1.0.0'
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream'

/** Media types are case-insensitive; JSON Schema patterns have no flags, so each letter is a class. */
const MEDIA_TYPE_PATTERN = `^${OFFSET_OCTET_STREAM.replace(/[a-z]/g, (letter) => `[${letter}${letter.toUpperCase()}]`).replace('+', '\\+')}\\s*(;.*)?$`
const mediaType = new RegExp(MEDIA_TYPE_PATTERN)
const INTEGER_DESCRIPTION = 'a non-negative decimal integer of at most 2^53-1'

/** Schemas of single tus header values, as Node hands them to Fastify (strings). */
export const TusResumable = Type.Literal(TUS_VERSION)
export const NonNegativeInteger = Type.String({ pattern: '^[0-9]{1,16}$', description: INTEGER_DESCRIPTION })
export const DeferLength = Type.Literal('1', { description: 'exactly 1' })
export const MetadataHeader = Type.String({ description: 'comma-separated "key base64" pairs' })
export const OffsetOctetStream = Type.String({ pattern: MEDIA_TYPE_PATTERN, description: OFFSET_OCTET_STREAM })
export const MethodOverride = Type.Union(
  [Type.Literal('PATCH'), Type.Literal('HEAD'), Type.Literal('DELETE')],
  { description: 'PATCH, HEAD or DELETE' }
)

/** Parses a header value that the schema already matched against `NonNegativeInteger`. */
export function parseInteger (name: string, value: string): number {
  const parsed = Number(value)
  if (!Number.isSafeInteger(parsed)) {
    throw new errors.FST_TUS_INVALID_HEADER(displayName(name), `expected ${INTEGER_DESCRIPTION}, got "${value}"`)
  }
  return parsed
}

export function isOffsetOctetStream (contentType: string | undefined): boolean {
  return contentType !== undefined && mediaType.test(contentType)
}

/** The length of a request body as its headers announce it: 0 without one, `undefined` when chunked. */
export function announcedBodyLength (headers: Readonly<Record<string, string | string[] | undefined>>): number | undefined {
  const { 'content-length': length, 'transfer-encoding': encoding } = headers
  if (length !== undefined) return Number(length)
  return encoding === undefined ? 0 : undefined
}

/** `upload-offset` → `Upload-Offset`, for messages. */
export function displayName (name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase())
}

/** The error a failing header value gets: 412 for the version, 415 for the media type, else 400 with the schema's description. */
export function headerError (name: string, value: unknown, schema: TSchema): Error {
  const shown = value === undefined ? 'nothing' : JSON.stringify(value)
  if (name === 'tus-resumable') return new errors.FST_TUS_UNSUPPORTED_VERSION(shown)
  if (name === 'content-type') return new errors.FST_TUS_UNSUPPORTED_MEDIA_TYPE(shown)
  const problem = value === undefined ? 'missing' : `expected ${schema.description as string}, got ${shown}`
  return new errors.FST_TUS_INVALID_HEADER(displayName(name), problem)
}

/** Methods a browser client uses on tus endpoints (CORS `methods`): OPTIONS for the preflights. */
export const corsMethods: readonly string[] = Object.freeze(['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'])

/** Request headers a browser client must be allowed to send (CORS `allowedHeaders`). */
export const corsAllowedHeaders: readonly string[] = Object.freeze([
  'Content-Disposition',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Checksum',
  'Upload-Complete',
  'Upload-Concat',
  'Upload-Defer-Length',
  'Upload-Draft-Interop-Version',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Offset',
  'X-HTTP-Method-Override',
  'X-Requested-With'
])

/** Response headers a browser client must be able to read (CORS `exposedHeaders`). */
export const corsExposedHeaders: readonly string[] = Object.freeze([
  'Location',
  'Tus-Checksum-Algorithm',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Resumable',
  'Tus-Version',
  'Upload-Complete',
  'Upload-Concat',
  'Upload-Defer-Length',
  'Upload-Expires',
  'Upload-Length',
  'Upload-Limit',
  'Upload-Metadata',
  'Upload-Offset'
])
