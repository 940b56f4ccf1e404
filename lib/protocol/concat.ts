import { errors } from '../errors.js'

/** `Upload-Concat` on creation: a partial upload, or a final upload made of partials (their URLs, in order). */
export type ConcatRequest = { readonly kind: 'partial' } | { readonly kind: 'final', readonly urls: readonly string[] }

const FINAL = /^final;\s*(\S.*)$/

/** Parses `Upload-Concat: partial` or `Upload-Concat: final;<url> <url> ...`. */
export function parseConcat (value: string): ConcatRequest {
  if (value === 'partial') return { kind: 'partial' }
  const match = FINAL.exec(value)
  if (match === null) throw new errors.FST_TUS_INVALID_HEADER('Upload-Concat', `expected "partial" or "final;<url> <url> ...", got ${JSON.stringify(value)}`)
  return { kind: 'final', urls: (match[1] as string).trim().split(/\s+/) }
}
