// Helpers for tests with real processes: tus servers in processes of their own
// (test/fixtures/tus-server.ts) and a round-robin TCP proxy in front of them,
// as a load balancer would spread clients over several processes of one host.
import { spawn, type ChildProcess } from 'node:child_process'
import net, { type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { pace, within } from './server.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/tus-server.ts', import.meta.url))

/** How long a server process may take to print its port (it loads TypeScript through tap's loaders). */
const START_TIMEOUT = 20_000
/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
const STOP_TIMEOUT = 5000
/** The most of a child's stderr kept for error messages. */
const STDERR_KEPT = 8192

export interface ServerProcess {
  readonly port: number
  readonly pid: number
  readonly child: ChildProcess
  /** `http://127.0.0.1:<port>/uploads` */
  readonly endpoint: string
  /** Settles once the process has exited (and been reaped), with its code or signal. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** What the process wrote to stderr (the last few KiB). */
  stderr (): string
  /**
   * Sends `signal` (SIGKILL by default) and resolves once the process has exited
   * and been reaped (at most `timeout` ms): from then on its pid is gone, so a
   * FileLocker of another process takes over its locks at once.
   */
  kill (signal?: NodeJS.Signals, timeout?: number): Promise<void>
  /** SIGTERM (a clean close: bodies in flight are answered 503, coverage written), SIGKILL if it lingers. */
  stop (): Promise<void>
}

export interface ServerProcessOptions {
  /** The upload directory (UPLOAD_DIR); processes that share it share their uploads. */
  dir: string
  /** More environment for the fixture: PORT (a restart on the port of a dead process), LOCKER=memory|file. */
  env?: Record<string, string>
}

const running = new Set<ChildProcess>()
// a test process that dies without its teardowns leaves no server behind
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Starts test/fixtures/tus-server.ts in a process of its own, with this
 * process's `execArgv` (tap's TypeScript loaders and coverage), and waits
 * (bounded) for the `{"port":N}` line it prints once it listens. Stopped when
 * the test ends, if it is still running.
 */
export async function startServerProcess (t: Test, { dir, env = {} }: ServerProcessOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...process.execArgv, FIXTURE], {
    env: { ...process.env, ...env, UPLOAD_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.add(child)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (text: string) => { stderr = (stderr + text).slice(-STDERR_KEPT) })

  const kill = async (signal: NodeJS.Signals = 'SIGKILL', timeout = STOP_TIMEOUT): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await within(`process ${child.pid} to exit on ${signal}`, exited, timeout)
  }
  const stop = async (): Promise<void> => {
    try {
      await kill('SIGTERM')
    } catch {
      await kill('SIGKILL')
    }
  }
  t.teardown(stop)

  let port: number
  try {
    port = await within('the server process to listen', readPort(child, exited), START_TIMEOUT)
  } catch (error) {
    child.kill('SIGKILL')
    throw new Error(`${(error as Error).message}\nstderr of the server process:\n${stderr}`)
  }
  return {
    port,
    pid: child.pid as number,
    child,
    endpoint: `http://127.0.0.1:${port}/uploads`,
    exited,
    stderr: () => stderr,
    kill,
    stop
  }
}

/** The port from the first `{"port":N}` line on the child's stdout; rejects if it exits first. */
function readPort (child: ChildProcess, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = ''
    const stdout = child.stdout as NonNullable<ChildProcess['stdout']>
    stdout.setEncoding('utf8')
    stdout.on('data', (text: string) => {
      buffered += text
      for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        const port = portOf(line)
        if (port !== undefined) resolve(port)
      }
    })
    exited.then(({ code, signal }) => reject(new Error(`the server process exited (code ${code}, signal ${signal}) before it listened`)), () => {})
  })
}

function portOf (line: string): number | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const { port } = JSON.parse(line) as { port?: unknown }
    return typeof port === 'number' && Number.isInteger(port) && port > 0 ? port : undefined
  } catch {
    return undefined
  }
}

/** One client connection the proxy took, and where it went. */
export interface ProxiedConnection {
  /** In order of arrival, from 0. */
  readonly id: number
  /** The backend port it was sent to. */
  readonly backend: number
  /**
   * The first line the client sent (`PATCH /uploads/<uid> HTTP/1.1`), once it
   * came. With keep-alive, later requests on the connection are not seen here.
   */
  requestLine?: string
  /** The error code of the connection to the backend (`ECONNREFUSED` for a dead one), if it failed. */
  backendError?: string
  /** Bytes from the client to the backend, and back. */
  bytesUp: number
  bytesDown: number
}

export interface RoundRobinProxy {
  readonly port: number
  /** `http://127.0.0.1:<port>/uploads` */
  readonly endpoint: string
  /**
   * The backend ports, taken in turn for each new client connection. Mutable:
   * replace a port (a restarted server), push or splice; a port nobody listens
   * on gives its clients a reset.
   */
  backends: number[]
  /** Every connection taken, in order. */
  readonly connections: readonly ProxiedConnection[]
  /** The connections whose first request line matches `pattern`. */
  requests (pattern: RegExp): ProxiedConnection[]
  /** Ends every open connection with a reset: as a network cut would. */
  cutAll (): void
  close (): Promise<void>
}

export interface RoundRobinProxyOptions {
  /** Forwards what clients send at about this rate, per connection (answers go back at full speed). */
  bytesPerSecond?: number
}

/**
 * A TCP proxy on 127.0.0.1 that sends each new client connection to the next
 * backend port in turn. With a new connection per request (keep-alive off),
 * consecutive requests of one client land on different backends. A backend
 * that fails (refused, reset) resets its client; a client that goes away takes
 * its backend connection with it; a clean close is passed on as one, half-close
 * included. Closed, open connections and all, when the test ends.
 */
export async function roundRobinProxy (t: Test, ports: number[], { bytesPerSecond }: RoundRobinProxyOptions = {}): Promise<RoundRobinProxy> {
  const sockets = new Set<net.Socket>()
  const connections: ProxiedConnection[] = []
  let next = 0

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const backends = proxy.backends
    if (backends.length === 0) {
      reset(client)
      return
    }
    const backend = backends[next++ % backends.length] as number
    const connection: ProxiedConnection = { id: connections.length, backend, bytesUp: 0, bytesDown: 0 }
    connections.push(connection)
    const upstream = net.connect({ port: backend, host: '127.0.0.1', allowHalfOpen: true })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => { sockets.delete(socket) })
    }

    let head = ''
    client.on('data', (chunk: Buffer) => {
      connection.bytesUp += chunk.length
      if (connection.requestLine !== undefined || head.length > 8192) return
      head += chunk.toString('latin1')
      const end = head.indexOf('\r\n')
      if (end !== -1) connection.requestLine = head.slice(0, end)
    })
    upstream.on('data', (chunk: Buffer) => { connection.bytesDown += chunk.length })

    // a failure on one side is a reset on the other; a client that goes, goes for good
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      connection.backendError ??= error.code ?? error.message
      reset(client)
    })
    client.on('error', () => { reset(upstream) })
    client.once('close', () => { if (!upstream.destroyed) upstream.destroy() })
    upstream.once('close', (hadError) => { if (hadError) reset(client) })

    if (bytesPerSecond === undefined) {
      client.pipe(upstream)
    } else {
      client.pipe(pace(bytesPerSecond)).pipe(upstream)
    }
    upstream.pipe(client)
  })
  const proxy: RoundRobinProxy = {
    port: 0,
    endpoint: '',
    backends: [...ports],
    connections,
    requests: (pattern) => connections.filter((connection) => connection.requestLine !== undefined && pattern.test(connection.requestLine)),
    cutAll () {
      for (const socket of sockets) reset(socket)
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  }
  server.listen(0, '127.0.0.1')
  await within('the proxy to listen', new Promise((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  }), 5000)
  t.teardown(() => proxy.close())
  const { port } = server.address() as AddressInfo
  return Object.assign(proxy, { port, endpoint: `http://127.0.0.1:${port}/uploads` })
}

/**
 * Closes a socket with a TCP reset, or destroys it if it is not connected or
 * is already shutting down: libuv refuses to reset a socket with a pending
 * shutdown (EINVAL), and Node 20 then never closes its handle, so the process
 * spins at exit.
 */
export function reset (socket: net.Socket): void {
  if (socket.destroyed) return
  if (socket.writableEnded || socket.pending) {
    socket.destroy()
    return
  }
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}
