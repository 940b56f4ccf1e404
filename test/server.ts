import net, { type AddressInfo } from 'node:net'
import { Transform } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import tus, { type FastifyTusOptions } from '../lib/index.js'

export interface Served {
  app: FastifyInstance
  dir: string
  port: number
  /** `http://127.0.0.1:<port>/uploads` */
  endpoint: string
}

/**
 * A real server on an ephemeral port with one tus registration at `/uploads`
 * over a fresh directory; closed when the test ends, open connections and all.
 */
export async function startServer (t: Test, options: Partial<FastifyTusOptions> = {}): Promise<Served> {
  const dir = t.testdir()
  const app = Fastify({ forceCloseConnections: true })
  await app.register(tus, { uploadPath: dir, ...options })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, dir, port, endpoint: `http://127.0.0.1:${port}/uploads` }
}

/**
 * A TCP proxy to `port` that forwards what clients send at about `bytesPerSecond`
 * (answers go back at full speed), so that a client's upload takes a while and
 * its progress can be watched. A client that goes away takes its upstream
 * connection with it, as a cut network would. Closed when the test ends.
 */
export async function slowProxy (t: Test, port: number, bytesPerSecond: number): Promise<number> {
  const sockets = new Set<net.Socket>()
  const proxy = net.createServer((client) => {
    const upstream = net.connect({ port, host: '127.0.0.1' })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(pace(bytesPerSecond)).pipe(upstream)
    upstream.pipe(client)
  })
  proxy.listen(0, '127.0.0.1')
  await new Promise((resolve) => proxy.once('listening', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    proxy.close(() => resolve())
  }))
  return (proxy.address() as AddressInfo).port
}

/** Polls `check` until it returns something other than `undefined`; fails after `timeout` ms. */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined> | T | undefined, timeout = 5000, interval = 5): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** A promise that rejects after `ms` unless `promise` settles first. */
export function within<T> (what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A stream that passes chunks on at about `bytesPerSecond`. */
export function pace (bytesPerSecond: number): Transform {
  return new Transform({
    transform (chunk: Buffer, _encoding, done) {
      this.push(chunk)
      setTimeout(done, chunk.length * 1000 / bytesPerSecond)
    }
  })
}
