import net from 'node:net'
import type { Test } from 'tap'
import { within } from './server.js'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * An HTTP/1.1 client on a bare socket, to send exactly the bytes a test wants
 * (a head, part of a body, nothing more) and to see the answer and the close.
 */
export class RawClient {
  readonly socket: net.Socket
  #received = Buffer.alloc(0)
  #closed = false
  readonly #waiters = new Set<() => void>()

  private constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk])
      this.#notify()
    })
    socket.on('error', () => {}) // resets are part of these tests
    socket.on('close', () => {
      this.#closed = true
      this.#notify()
    })
  }

  static async open (t: Test, port: number): Promise<RawClient> {
    const socket = net.connect({ port, host: '127.0.0.1' })
    t.teardown(() => { socket.destroy() })
    await within('the connection', new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    }), 2000)
    return new RawClient(socket)
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Writes and waits until the bytes are handed to the kernel. */
  write (data: string | Buffer): Promise<void> {
    return within('a socket write', new Promise((resolve, reject) => {
      this.socket.write(data, (error) => { if (error == null) resolve(); else reject(error) })
    }), 5000)
  }

  /** Writes, ignoring a socket the server has already closed. */
  async tryWrite (data: string | Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return
    await this.write(data).catch(() => {})
  }

  /** The first complete response on the socket. */
  response (timeout = 2000): Promise<RawResponse> {
    return this.#until('a response', () => {
      const parsed = parseResponse(this.#received)
      if (parsed === undefined && this.#closed) throw new Error(`the connection closed without a complete response: ${JSON.stringify(this.#received.toString('latin1'))}`)
      return parsed
    }, timeout)
  }

  /** Resolves once the socket is closed. */
  waitClosed (timeout = 2000): Promise<true> {
    return this.#until('the connection to close', () => this.#closed ? true : undefined, timeout)
  }

  #notify (): void {
    for (const waiter of [...this.#waiters]) waiter()
  }

  #until<T> (what: string, check: () => T | undefined, timeout: number): Promise<T> {
    let waiter!: () => void
    const result = new Promise<T>((resolve, reject) => {
      waiter = () => {
        try {
          const value = check()
          if (value === undefined) return
          this.#waiters.delete(waiter)
          resolve(value)
        } catch (error) {
          this.#waiters.delete(waiter)
          reject(error)
        }
      }
      this.#waiters.add(waiter)
      waiter()
    })
    return within(what, result, timeout).finally(() => this.#waiters.delete(waiter))
  }
}

function parseResponse (data: Buffer): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'] ?? 0)
  if (data.length < end + 4 + length) return undefined
  return { status: Number(statusLine.split(' ')[1]), headers, body: data.subarray(end + 4, end + 4 + length).toString() }
}

export function requestHead (method: string, path: string, headers: Record<string, string>): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines}\r\n`
}

/** The head of a tus PATCH of `length` body bytes at `offset`. */
export function patchHead (path: string, offset: number, length: number): string {
  return requestHead('PATCH', path, { 'tus-resumable': '1.0.0', 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset), 'content-length': String(length) })
}
