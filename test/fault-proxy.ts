import { readFileSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { waitFor } from './server.js'
import { reset } from './processes.js'

/** Client bytes a connection holds back (stalled, dripping) before it stops reading the client. */
const HOLD_LIMIT = 1024 * 1024

type Mode = 'pass' | 'stall' | 'drip'

/**
 * One client connection through a {@link faultProxy}, and what happens to the
 * bytes its client sends (the client → server direction):
 *
 * - pass, the default: forwarded as they come;
 * - `stall()`: held back, both sockets left open: to the server the client is
 *   half-open, silent however much it keeps sending (and even if it goes away);
 * - `drip(bytes, ms)`: forwarded `bytes` at a time every `ms` milliseconds;
 * - `reset()`: both sockets destroyed at once with a TCP RST (`resetAndDestroy()`);
 * - `cutAfter(n)`: exactly `n` more bytes forwarded, then `reset()` as soon as
 *   they have reached the server.
 *
 * The answers (server → client) always go back at full speed. When the server
 * closes its side, the client's side is ended after the answer; a client that
 * goes away takes its upstream connection with it, unless stalled.
 *
 * A byte counts as `forwarded` once the proxy's socket to the server took it
 * (its write completed). It has reached the server only once the proxy's kernel
 * has sent it and had it acknowledged: a server that is not reading yet closes
 * its receive window, and bytes that wait in the proxy's kernel send queue are
 * dropped by a reset. `unsent` counts the forwarded bytes that have not reached
 * the server's kernel (read from /proc/net/tcp: Linux); `flushed()` waits until
 * there are none, and `cutAfter` does before it resets. After a reset with
 * `unsentAtReset === 0`, `forwarded` is exactly what reached the server.
 */
export class ProxiedConnection {
  /** Bytes the client sent to the proxy. */
  received = 0
  /** Client bytes the socket to the server took (see `unsent` for those still in the proxy's kernel). */
  forwarded = 0
  /** Server bytes passed back to the client. */
  returned = 0
  /** Whether the connection was reset, by `reset()` or at the end of `cutAfter(n)`. */
  wasReset = false
  /** `unsent` when the connection was reset. */
  unsentAtReset: number | undefined
  readonly #client: net.Socket
  readonly #upstream: net.Socket
  readonly #forwardedChunks: Buffer[] = []
  #mode: Mode = 'pass'
  #held: Buffer[] = []
  #heldBytes = 0
  #inFlight = 0
  #budget = Infinity
  #dripTimer: NodeJS.Timeout | undefined
  #cutTimeout = 0
  #clientEnded = false
  #serverGone = false
  readonly #onReset: (connection: ProxiedConnection) => void
  #sourcePort: number | undefined

  constructor (readonly index: number, client: net.Socket, upstream: net.Socket, onReset: (connection: ProxiedConnection) => void) {
    this.#client = client
    this.#upstream = upstream
    this.#onReset = onReset
    upstream.once('connect', () => { this.#sourcePort = upstream.localPort })
    client.on('data', (chunk: Buffer) => {
      this.received += chunk.length
      if (this.#serverGone || this.wasReset) return // nowhere to go: dropped
      this.#held.push(chunk)
      this.#heldBytes += chunk.length
      if (this.#heldBytes >= HOLD_LIMIT) client.pause()
      if (this.#mode === 'pass') this.#forward(Infinity)
    })
    client.on('end', () => {
      this.#clientEnded = true
      if (this.#mode === 'pass') this.#forward(Infinity)
    })
    client.on('close', () => {
      clearInterval(this.#dripTimer)
      if (this.#mode !== 'stall') upstream.destroy()
    })
    upstream.on('data', (chunk: Buffer) => {
      this.returned += chunk.length
      if (!client.destroyed) client.write(chunk)
    })
    upstream.on('drain', () => { if (this.#mode === 'pass') this.#forward(Infinity) })
    upstream.on('end', () => this.#onServerGone())
    upstream.on('close', () => this.#onServerGone())
    for (const socket of [client, upstream]) socket.on('error', () => {}) // resets are the point
  }

  /** Client bytes handed to the socket to the server that have not reached the server's kernel yet. */
  get unsent (): number {
    return this.#inFlight + kernelSendQueue(this.#upstream)
  }

  /** The port the server sees this connection come from (the proxy's end of it), once connected. */
  get sourcePort (): number | undefined {
    return this.#sourcePort
  }

  /** Client bytes held back by the proxy (stalled or waiting for the drip). */
  get held (): number {
    return this.#heldBytes
  }

  /** Both sockets are closed. */
  get closed (): boolean {
    return this.#client.destroyed && this.#upstream.destroyed
  }

  /** The client bytes the server's socket took, in order. */
  forwardedBytes (): Buffer {
    return Buffer.concat(this.#forwardedChunks)
  }

  /** Forwards the client's bytes as they come (the default). */
  pass (): void {
    this.#setMode('pass')
    this.#forward(Infinity)
  }

  /** Stops forwarding the client's bytes; both sockets stay open. */
  stall (): void {
    this.#setMode('stall')
  }

  /** Forwards at most `bytes` of the client's bytes every `intervalMs`. */
  drip (bytes: number, intervalMs: number): void {
    this.#setMode('drip')
    this.#dripTimer = setInterval(() => this.#forward(bytes), intervalMs)
  }

  /** Destroys both sockets with a TCP RST; bytes held or sent later are dropped. */
  reset (): void {
    this.unsentAtReset = this.unsent
    this.wasReset = true
    this.#setMode('stall')
    this.#held = []
    this.#heldBytes = 0
    reset(this.#client)
    reset(this.#upstream)
    this.#onReset(this)
  }

  /**
   * Forwards exactly `bytes` more client bytes (in the current mode) and resets
   * once they have reached the server's kernel, or after `timeout` ms all the
   * same: with 0, at once, dropping what still waits in the proxy's kernel
   * (`unsentAtReset`). `cutAfter(Infinity)` takes the cut back.
   */
  cutAfter (bytes: number, timeout = 3000): void {
    this.#budget = bytes
    this.#cutTimeout = timeout
    if (bytes === 0) this.#resetWhenFlushed()
    else if (this.#mode === 'pass') this.#forward(Infinity)
  }

  /** Resolves once every forwarded byte has reached the server's kernel. */
  flushed (timeout = 3000): Promise<true> {
    return waitFor(`connection ${this.index} to flush`, () => this.unsent === 0 ? true : undefined, timeout, 2)
  }

  /** Resolves once `bytes` client bytes have been forwarded. */
  hasForwarded (bytes: number, timeout = 5000): Promise<true> {
    return waitFor(`connection ${this.index} to forward ${bytes} bytes`, () => this.forwarded >= bytes ? true : undefined, timeout, 1)
  }

  #setMode (mode: Mode): void {
    clearInterval(this.#dripTimer)
    this.#mode = mode
  }

  /** Hands up to `max` held bytes to the server's socket, within the budget and the socket's buffer. */
  #forward (max: number): void {
    let room = Math.min(max, this.#budget)
    while (room > 0 && this.#held.length > 0 && !this.#upstream.writableNeedDrain && !this.#serverGone && !this.wasReset) {
      const first = this.#held[0] as Buffer
      const chunk = first.length > room ? first.subarray(0, room) : first
      if (chunk === first) this.#held.shift()
      else this.#held[0] = first.subarray(room)
      this.#heldBytes -= chunk.length
      this.#budget -= chunk.length
      this.#inFlight += chunk.length
      room -= chunk.length
      this.#upstream.write(chunk, (error) => {
        this.#inFlight -= chunk.length
        if (error != null) return
        this.forwarded += chunk.length
        this.#forwardedChunks.push(chunk)
        if (this.#budget === 0 && this.#inFlight === 0) this.#resetWhenFlushed()
      })
    }
    if (this.#heldBytes < HOLD_LIMIT && !this.#client.destroyed) this.#client.resume()
    if (this.#clientEnded && this.#held.length === 0 && this.#budget > 0 && !this.#upstream.writableEnded) this.#upstream.end()
  }

  /** The end of `cutAfter`: a reset once the forwarded bytes have reached the server (or its timeout passed). */
  #resetWhenFlushed (): void {
    if (this.#cutTimeout === 0) return this.reset()
    this.flushed(this.#cutTimeout).catch(() => {}).finally(() => { if (!this.wasReset) this.reset() })
  }

  /** The server ended or lost its side: the client's side is ended after the answer, and what it sends is dropped. */
  #onServerGone (): void {
    if (this.#serverGone) return
    this.#serverGone = true
    clearInterval(this.#dripTimer)
    this.#held = []
    this.#heldBytes = 0
    if (!this.#client.destroyed) {
      this.#client.end()
      this.#client.resume()
    }
  }
}

/**
 * The bytes the kernel holds for `socket` that its peer has not acknowledged
 * (sent or not), from /proc/net/tcp: Linux and IPv4 only, 0 elsewhere or once
 * the socket is closed.
 */
function kernelSendQueue (socket: net.Socket): number {
  const { localPort, remotePort } = socket
  if (localPort === undefined || remotePort === undefined || socket.destroyed) return 0
  let table: string
  try {
    table = readFileSync('/proc/net/tcp', 'latin1')
  } catch {
    return 0
  }
  const port = (value: number): string => ':' + value.toString(16).toUpperCase().padStart(4, '0')
  for (const line of table.split('\n')) {
    const [, local, remote, , queues] = line.trim().split(/\s+/)
    if (local?.endsWith(port(localPort)) && remote?.endsWith(port(remotePort))) return parseInt(queues?.split(':')[0] ?? '0', 16)
  }
  return 0
}

export interface FaultProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number
  /** Every connection so far, in the order the proxy accepted them. */
  readonly connections: ProxiedConnection[]
  /** Called with each new connection before any of its bytes is forwarded: the place to give it a fault. */
  onConnection: (connection: ProxiedConnection) => void
  /** Called when a connection has been reset. */
  onReset: (connection: ProxiedConnection) => void
  /** The `index`-th connection (from 0), once a client has opened it. */
  connection: (index: number, timeout?: number) => Promise<ProxiedConnection>
}

/**
 * A TCP proxy on 127.0.0.1 in front of the server at `targetPort`, whose
 * connections a test can stall, slow down, reset or cut (see
 * {@link ProxiedConnection}). Closed, with every connection, when the test ends.
 */
export async function faultProxy (t: Test, targetPort: number): Promise<FaultProxy> {
  const sockets = new Set<net.Socket>()
  const proxy: FaultProxy = {
    port: 0,
    connections: [],
    onConnection: () => {},
    onReset: () => {},
    connection: (index, timeout = 2000) => waitFor(`proxied connection ${index}`, () => proxy.connections[index], timeout, 1)
  }
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1' })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    }
    const connection = new ProxiedConnection(proxy.connections.length, client, upstream, (reset) => proxy.onReset(reset))
    proxy.connections.push(connection)
    proxy.onConnection(connection)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  return Object.assign(proxy, { port: (server.address() as AddressInfo).port })
}
