import { readdir } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { errors } from '../errors.js'

/** An `uploadPath` with `{param}` placeholders, ready to be filled per request. */
export interface UploadPathTemplate {
  /** The placeholders, in order. */
  readonly params: readonly string[]
  /** Fills the placeholders from route params; a value that is not one plain path segment is a 404. */
  resolve (params: Readonly<Record<string, string | undefined>>): string
  /** Every existing directory the template can resolve to. */
  directories (): Promise<string[]>
}

const PLACEHOLDER = /\{([^{}]*)\}/g
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const UNSAFE_SEGMENT = /[/\\\0-\x1f\x7f-\x9f]/

/**
 * Parses an `uploadPath` (made absolute against the working directory). A filled
 * placeholder is always one plain path segment: no separator, no control
 * character, never empty, `.` or `..`. So no route param can lead outside the
 * directory that holds the placeholder.
 */
export function parseUploadPath (uploadPath: string): UploadPathTemplate {
  const absolute = resolve(uploadPath)
  const params = [...absolute.matchAll(PLACEHOLDER)].map((match) => match[1] as string)
  return {
    params,
    resolve (values) {
      if (params.length === 0) return absolute
      return absolute.replace(PLACEHOLDER, (_, name: string) => {
        const value = values[name] as string
        if (!isSafeSegment(value)) throw new errors.FST_TUS_INVALID_ROUTE_PARAM(name)
        return value
      })
    },
    async directories () {
      return expand(sep, absolute.split(sep).filter((segment) => segment !== ''))
    }
  }
}

/** The existing directories under `base` that the segments match, placeholders matching any name. */
async function expand (base: string, segments: readonly string[]): Promise<string[]> {
  const [segment, ...rest] = segments
  if (segment === undefined) return [base]
  if (!segment.includes('{')) return expand(join(base, segment), rest)
  const pattern = new RegExp(`^${segment.split(PLACEHOLDER).map((part, index) => index % 2 === 1 ? '.+' : escapeRegExp(part)).join('')}$`)
  const entries = await readdir(base, { withFileTypes: true }).catch(() => [])
  const matching = entries.filter((entry) => entry.isDirectory() && pattern.test(entry.name))
  return (await Promise.all(matching.map((entry) => expand(join(base, entry.name), rest)))).flat()
}

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

function isSafeSegment (value: string): boolean {
  return value !== '' && value !== '.' && value !== '..' && !UNSAFE_SEGMENT.test(value)
}

/** The directory under an upload directory that holds metadata and unfinished data. */
export const STATE_DIR = '.metadata'

const MAX_NAME_BYTES = 255
// eslint-disable-next-line no-control-regex -- control characters are what it removes
const CONTROL_CHARS = /[\0-\x1f\x7f-\x9f]/g

/**
 * The base name a completed upload gets from its `filename` metadata: only the
 * last path component, no control characters, at most 255 bytes (the extension
 * kept), never `.`, `..` or the state directory. Falls back to the upload id.
 */
export function sanitizeFileName (fileName: string | undefined, uid: string): string {
  if (fileName === undefined) return uid
  const base = fileName.split(/[/\\]/).pop() as string
  const cleaned = truncateUtf8(base.replace(CONTROL_CHARS, '').trim(), MAX_NAME_BYTES)
  if (cleaned === '' || cleaned === '.' || cleaned === '..' || cleaned === STATE_DIR) return uid
  return cleaned
}

function truncateUtf8 (name: string, maxBytes: number): string {
  if (Buffer.byteLength(name) <= maxBytes) return name
  const dot = name.lastIndexOf('.')
  const extension = dot > 0 && Buffer.byteLength(name.slice(dot)) <= 32 ? name.slice(dot) : ''
  const budget = maxBytes - Buffer.byteLength(extension)
  let stem = ''
  let bytes = 0
  for (const char of name.slice(0, name.length - extension.length)) {
    bytes += Buffer.byteLength(char)
    if (bytes > budget) break
    stem += char
  }
  return stem + extension
}
