import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { announcedBodyLength } from '../protocol/headers.js'

/**
 * The requests with a body a registration is writing (each holds a file open):
 * at most `max` at once, so that a flood cannot exhaust file descriptors, and
 * known, so that a closing server can wait for their answers.
 */
export class BodyRequests {
  readonly #max: number
  readonly #answered = new Set<Promise<void>>()

  constructor (max: number) {
    this.#max = max
  }

  /** Counts a request with a body until its response is over, however it ends; one too many is a 503 with `Retry-After`. */
  admit (request: FastifyRequest, reply: FastifyReply): void {
    if (announcedBodyLength(request.headers) === 0) return
    if (this.#answered.size >= this.#max) {
      reply.header('retry-after', '1')
      throw new errors.FST_TUS_BUSY(this.#max)
    }
    const answered: Promise<void> = new Promise((resolve) => { reply.raw.once('close', resolve) })
    this.#answered.add(answered)
    answered.then(() => this.#answered.delete(answered))
  }

  /** Resolves when every request counted now has been answered, or after `timeout` ms. */
  async answered (timeout: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeout) })
    await Promise.race([Promise.all(this.#answered), late])
    clearTimeout(timer)
  }
}
