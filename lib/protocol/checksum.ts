import { createHash, type Hash } from 'node:crypto'
import { errors } from '../errors.js'

/** The checksum algorithms offered by default, as `Tus-Checksum-Algorithm` lists them (sha1 is required). */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512'] as const
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number]

/** A checksum a client sent for one body: `Upload-Checksum: <algorithm> <base64 digest>`. */
export interface Checksum {
  readonly algorithm: ChecksumAlgorithm
  readonly digest: string
}

const CHECKSUM = /^(\S+) ([A-Za-z0-9+/]+={0,2})$/

/** Parses an `Upload-Checksum` value; an algorithm not in `offered` is a 400. */
export function parseChecksum (value: string, offered: readonly ChecksumAlgorithm[]): Checksum {
  const match = CHECKSUM.exec(value)
  if (match === null) throw new errors.FST_TUS_INVALID_HEADER('Upload-Checksum', `expected "<algorithm> <base64 digest>", got ${JSON.stringify(value)}`)
  const algorithm = match[1] as ChecksumAlgorithm
  if (!offered.includes(algorithm)) throw new errors.FST_TUS_CHECKSUM_ALGORITHM(algorithm, offered.join(', '))
  return { algorithm, digest: match[2] as string }
}

/**
 * The digests of a body, computed as its chunks go to disk (never read back):
 * one algorithm for a checksum sent as a header, every offered one for a
 * checksum announced as a trailer, whose algorithm is known only at the end.
 */
export class BodyDigests {
  readonly #hashes: Map<ChecksumAlgorithm, Hash>

  constructor (algorithms: readonly ChecksumAlgorithm[]) {
    this.#hashes = new Map(algorithms.map((algorithm) => [algorithm, createHash(algorithm)]))
  }

  readonly update = (chunk: Buffer): void => {
    for (const hash of this.#hashes.values()) hash.update(chunk)
  }

  /** Whether the body matches `checksum`; its algorithm is one these digests compute. */
  matches (checksum: Checksum): boolean {
    return (this.#hashes.get(checksum.algorithm) as Hash).digest('base64') === checksum.digest
  }
}
