import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import tus from '../lib/index.js'
import { OCTET, TUS, encodeMetadata, seededBytes } from './helpers.js'
import { waitFor } from './server.js'

/** One HTTP/2 request: its answer's headers and body; `body` is sent whole, or `cut` bytes of it and then the stream is cancelled. */
function send (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer, cut?: number): Promise<{ headers: IncomingHttpHeaders, body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers)
    let answer: IncomingHttpHeaders = {}
    let text = ''
    stream.on('response', (received) => { answer = received })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { text += chunk })
    stream.on('end', () => resolve({ headers: answer, body: text }))
    stream.on('error', reject)
    if (cut === undefined) {
      stream.end(body)
      return
    }
    stream.write(body?.subarray(0, cut), () => { setTimeout(() => { stream.close(0x8); resolve({ headers: {}, body: '' }) }, 100) })
  })
}

/** The status of a request answered while its body is still being sent (the stream is then closed). */
function answerWhileSending (session: ClientHttp2Session, headers: OutgoingHttpHeaders, start: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers)
    stream.on('response', (received) => {
      resolve(received[':status'] as number)
      stream.close()
    })
    stream.on('error', reject)
    stream.write(start)
  })
}

async function serve (t: Test, app: FastifyInstance<any, any, any, any>, dir: string): Promise<number> {
  await app.register(tus, { uploadPath: dir })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return (app.server.address() as { port: number }).port
}

async function uploadInterruptAndResume (t: Test, session: ClientHttp2Session, dir: string): Promise<void> {
  const data = seededBytes(3 * 1024 * 1024 + 5, 2)
  const created = await send(session, { ':method': 'POST', ':path': '/uploads', ...TUS, 'upload-length': String(data.length), 'upload-metadata': encodeMetadata({ filename: 'h2.bin' }) })
  t.equal(created.headers[':status'], 201)
  const path = new URL(created.headers.location as string).pathname
  const patch = { ':method': 'PATCH', ':path': path, ...TUS, 'content-type': OCTET }
  await send(session, { ...patch, 'upload-offset': '0' }, data, 1024 * 1024) // cancelled mid-body
  const head = async (): Promise<number> => Number((await send(session, { ':method': 'HEAD', ':path': path, ...TUS })).headers['upload-offset'])
  const kept = await waitFor('the interrupted PATCH to end', async () => {
    const offset = await head()
    return offset > 0 ? offset : undefined
  })
  t.ok(kept > 0 && kept <= 1024 * 1024, `the bytes of the cancelled stream are kept (${kept})`)
  const early = await answerWhileSending(session, { ...patch, 'upload-offset': '0', 'content-length': String(data.length) }, data.subarray(0, 10))
  t.equal(early, 409, 'an early rejection needs no Connection: close over HTTP/2: its answer comes while the body is still on its way')
  const rest = await send(session, { ...patch, 'upload-offset': String(kept) }, data.subarray(kept))
  t.equal(rest.headers[':status'], 204)
  t.same(await readFile(join(dir, 'h2.bin')), data, 'byte-exact')
}

t.test('HTTP/2 cleartext: upload, interrupt, resume', async (t) => {
  const dir = t.testdir()
  const port = await serve(t, Fastify({ http2: true }), dir)
  const session = connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  await uploadInterruptAndResume(t, session, dir)
})

t.test('HTTP/2 over TLS with allowHTTP1: upload, interrupt, resume', async (t) => {
  const dir = t.testdir()
  const keys = t.testdir()
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-keyout', join(keys, 'key.pem'), '-out', join(keys, 'cert.pem')], { stdio: 'ignore' })
  const [key, cert] = await Promise.all([readFile(join(keys, 'key.pem')), readFile(join(keys, 'cert.pem'))])
  const port = await serve(t, Fastify({ http2: true, https: { key, cert, allowHTTP1: true } }), dir)
  const session = connect(`https://127.0.0.1:${port}`, { ca: cert, servername: 'localhost' })
  t.teardown(() => session.close())
  await uploadInterruptAndResume(t, session, dir)
  // allowHTTP1: an HTTP/1.1 client over the same TLS port is served by the same routes
  const http1 = await new Promise<{ version: string, status?: number, headers: Record<string, unknown> }>((resolve, reject) => {
    httpsRequest({ host: '127.0.0.1', port, path: '/uploads', method: 'OPTIONS', ca: cert, servername: 'localhost' }, (response) => {
      response.resume()
      response.on('end', () => resolve({ version: response.httpVersion, status: response.statusCode, headers: response.headers }))
    }).on('error', reject).end()
  })
  t.match(http1, { version: '1.1', status: 204, headers: { 'tus-resumable': '1.0.0', 'tus-extension': /creation/ } })
})
