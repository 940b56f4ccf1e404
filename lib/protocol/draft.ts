import { Type } from '@sinclair/typebox'

/**
 * The IETF "Resumable Uploads for HTTP" draft, by interop version: 5 (draft -03,
 * tus-js-client's 'ietf-draft-03'), 6 (drafts -04/-05, 'ietf-draft-05') and 8
 * (drafts -09 to -12, the current one). A request says which it speaks in
 * `Upload-Draft-Interop-Version`.
 */
export const DRAFT_VERSIONS = ['5', '6', '8'] as const
export type DraftVersion = typeof DRAFT_VERSIONS[number]

/** What a request's `Upload-Draft-Interop-Version` selects: a version, `unsupported`, or nothing (tus 1.0). */
export function draftVersionOf (value: string | string[] | undefined): DraftVersion | 'unsupported' | undefined {
  if (value === undefined) return undefined
  return (DRAFT_VERSIONS as readonly unknown[]).includes(value) ? value as DraftVersion : 'unsupported'
}

/** The media type of an append in versions 6 and 8. */
export const PARTIAL_UPLOAD = 'application/partial-upload'

/** A structured-field Boolean (`?1`, `?0`), parameters allowed and ignored. */
export const SfBoolean = Type.String({ pattern: '^\\?[01](;.*)?$', description: 'a structured-field boolean, ?1 or ?0' })
/** A structured-field Integer that is never negative: at most 15 digits. */
export const SfOffset = Type.String({ pattern: '^[0-9]{1,15}(;.*)?$', description: 'a non-negative structured-field integer' })
export const PartialUploadType = Type.String({ pattern: '^application/partial-upload\\s*(;.*)?$', description: PARTIAL_UPLOAD })

export const isTrue = (value: string): boolean => value.startsWith('?1')
export const sfInteger = (value: string): number => Number.parseInt(value, 10)
export const sfBoolean = (value: boolean): string => value ? '?1' : '?0'

/**
 * `Upload-Limit`: `min-size=0` always, `max-size` when there is a maximum, and
 * the seconds an unfinished upload has left (`expires` in version 6, `max-age` in 8).
 */
export function uploadLimit (version: DraftVersion, maxSize: number | undefined, secondsLeft: number | undefined): string | undefined {
  if (version === '5') return undefined
  const limits = ['min-size=0']
  if (maxSize !== undefined) limits.push(`max-size=${maxSize}`)
  if (secondsLeft !== undefined) limits.push(`${version === '6' ? 'expires' : 'max-age'}=${Math.max(0, Math.floor(secondsLeft))}`)
  return limits.join(', ')
}

/** RFC 9457 problem types of the draft, with the members it defines. */
export const problems = {
  mismatchingOffset: (expected: number, provided: number) => ({
    type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
    title: 'offset from request does not match offset of resource',
    'expected-offset': expected,
    'provided-offset': provided
  }),
  inconsistentLength: () => ({
    type: 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length',
    title: 'inconsistent length values for upload'
  }),
  completedUpload: () => ({
    type: 'https://iana.org/assignments/http-problem-types#completed-upload',
    title: 'upload is already completed'
  })
}

const FILENAME_STAR = /filename\*\s*=\s*UTF-8''([^;\s]+)/i
const FILENAME = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i

/** The file name of a `Content-Disposition` header (`filename*=UTF-8''...` first), if it has one. */
export function contentDispositionFileName (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const extended = FILENAME_STAR.exec(value)
  if (extended !== null) {
    try {
      return decodeURIComponent(extended[1] as string)
    } catch {
      return undefined
    }
  }
  const plain = FILENAME.exec(value)
  if (plain === null) return undefined
  return plain[1] === undefined ? plain[2] : plain[1].replace(/\\(.)/g, '$1')
}
