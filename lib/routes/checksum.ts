import { errors } from '../errors.js'
import { BodyDigests, parseChecksum, type Checksum } from '../protocol/checksum.js'
import type { TusContext, TusRequest } from './context.js'

/** What a body will be verified against, and its digests as it streams. */
export interface ChecksumPlan {
  readonly digests: BodyDigests
  /** The checksum from the `Upload-Checksum` header; absent when it is announced as a trailer. */
  readonly header?: Checksum
}

/**
 * The checksum a request body must match: from its `Upload-Checksum` header
 * (parsed before a byte is written: a malformed one or an algorithm not offered
 * is a 400), or announced as a trailer by `Trailer: Upload-Checksum`.
 */
export function planChecksum (context: TusContext, request: TusRequest): ChecksumPlan | undefined {
  const { extensions, checksumAlgorithms } = context.options
  if (!extensions.has('checksum')) return undefined
  const value = request.headers['upload-checksum']
  if (value !== undefined) {
    const header = parseChecksum(value, checksumAlgorithms)
    return { digests: new BodyDigests([header.algorithm]), header }
  }
  if (extensions.has('checksum-trailer') && announcesTrailer(request)) return { digests: new BodyDigests(checksumAlgorithms) }
  return undefined
}

/**
 * After the whole body arrived: why it cannot count, if it cannot: its checksum
 * does not match, an announced trailer is missing or malformed, or a checksum
 * trailer came unannounced (its body was not hashed, so it cannot be verified).
 */
export function checksumProblem (context: TusContext, request: TusRequest, plan: ChecksumPlan | undefined): Error | undefined {
  if (plan === undefined) return unannouncedTrailer(context, request)
  let checksum = plan.header
  if (checksum === undefined) {
    const trailer = trailersOf(request)['upload-checksum']
    if (trailer === undefined) return new errors.FST_TUS_CHECKSUM_TRAILER('announced by the Trailer header but not sent')
    try {
      checksum = parseChecksum(trailer, context.options.checksumAlgorithms)
    } catch (error) {
      return error as Error
    }
  }
  return plan.digests.matches(checksum) ? undefined : new errors.FST_TUS_CHECKSUM_MISMATCH(checksum.algorithm)
}

function unannouncedTrailer (context: TusContext, request: TusRequest): Error | undefined {
  if (!context.options.extensions.has('checksum-trailer') || trailersOf(request)['upload-checksum'] === undefined) return undefined
  return new errors.FST_TUS_CHECKSUM_TRAILER('announce it with the request header "Trailer: Upload-Checksum"')
}

function announcesTrailer (request: TusRequest): boolean {
  return (request.headers.trailer ?? '').toLowerCase().split(',').some((name) => name.trim() === 'upload-checksum')
}

/** The trailers of a body received whole (none for requests injected without a socket). */
function trailersOf (request: TusRequest): Partial<Record<string, string>> {
  return (request.raw.trailers as Partial<Record<string, string>> | undefined) ?? {}
}
