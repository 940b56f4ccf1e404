import { errors } from '../errors.js'

/** Decoded `Upload-Metadata`: key → UTF-8 value ('' for a key sent without a value). */
export type UploadMetadata = Record<string, string>

const KEY = /^[^\s,]+$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Encodes metadata as an `Upload-Metadata` header value (`null` when there is none). */
export function encodeMetadata (metadata: UploadMetadata): string | null {
  const pairs = Object.entries(metadata).map(([key, value]) => value === '' ? key : `${key} ${Buffer.from(value).toString('base64')}`)
  return pairs.length === 0 ? null : pairs.join(',')
}

/**
 * Decodes an `Upload-Metadata` header: comma-separated pairs of a key (no spaces,
 * no commas, unique) and an optional base64 value after a single space.
 */
export function decodeMetadata (header: string): UploadMetadata {
  const metadata: UploadMetadata = Object.create(null)
  for (const pair of header.split(',')) {
    const [key = '', value = '', ...rest] = pair.trim().split(' ')
    if (!KEY.test(key)) throw new errors.FST_TUS_INVALID_METADATA(`key ${JSON.stringify(key)} is empty or holds a space or comma`)
    if (rest.length > 0) throw new errors.FST_TUS_INVALID_METADATA(`the value of "${key}" holds a space`)
    if (!BASE64.test(value)) throw new errors.FST_TUS_INVALID_METADATA(`the value of "${key}" is not base64`)
    if (key in metadata) throw new errors.FST_TUS_INVALID_METADATA(`the key "${key}" appears twice`)
    metadata[key] = Buffer.from(value, 'base64').toString('utf8')
  }
  return metadata
}
