import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { readFile, readdir, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp, descriptorsUnder, encodeMetadata, uidOf } from './helpers.js'
import { startServer, waitFor } from './server.js'

const V = (version: string): Record<string, string> => ({ 'upload-draft-interop-version': version })
const PARTIAL = 'application/partial-upload'
const pathOf = (location: unknown): string => new URL(location as string, 'http://x').pathname

async function draftCreate (app: FastifyInstance, version: string, headers: Record<string, string>, payload?: string): Promise<{ status: number, headers: LightMyRequestResponse['headers'], path: string, body: string }> {
  const response = await app.inject({ method: 'POST', url: '/uploads', headers: { ...V(version), ...headers }, ...(payload === undefined ? {} : { payload }) })
  return { status: response.statusCode, headers: response.headers, path: response.headers.location === undefined ? '' : pathOf(response.headers.location), body: response.body }
}

function draftAppend (app: FastifyInstance, version: string, path: string, offset: number, complete: boolean, payload: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'PATCH',
    url: path,
    headers: { ...V(version), 'upload-offset': String(offset), 'upload-complete': complete ? '?1' : '?0', ...(version === '5' ? {} : { 'content-type': PARTIAL }), ...headers },
    payload
  })
}

const draftHead = (app: FastifyInstance, version: string, path: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'HEAD', url: path, headers: { ...V(version), ...headers } })

t.test('version 8, example 2 of the draft: an upload as a series of parts', async (t) => {
  const { app, dir } = await buildApp(t)
  const created = await draftCreate(app, '8', { 'upload-complete': '?0', 'content-disposition': 'attachment; filename="parts.txt"' }, 'one ')
  t.equal(created.status, 201)
  t.match(created.headers.location, /\/uploads\/[\w-]{21}$/)
  t.equal(created.headers['upload-complete'], '?0')
  t.equal(created.headers['upload-offset'], '4')
  t.equal(created.headers['upload-limit'], 'min-size=0')
  const second = await draftAppend(app, '8', created.path, 4, false, 'two ')
  t.equal(second.statusCode, 204)
  t.equal(second.headers['upload-complete'], '?0')
  const head = await draftHead(app, '8', created.path)
  t.equal(head.statusCode, 204)
  t.equal(head.headers['upload-offset'], '8')
  t.equal(head.headers['upload-complete'], '?0')
  t.equal(head.headers['cache-control'], 'no-store')
  t.notOk('upload-length' in head.headers, 'no length until the client says it')
  const last = await draftAppend(app, '8', created.path, 8, true, 'three')
  t.equal(last.statusCode, 200, 'the last part gets what the creation target produces')
  t.equal(last.headers['upload-complete'], '?1')
  t.equal(last.headers['upload-length'], '13')
  t.equal(await readFile(join(dir, 'parts.txt'), 'utf8'), 'one two three', 'named by Content-Disposition')
  const after = await draftHead(app, '8', created.path)
  t.equal(after.headers['upload-complete'], '?1')
  t.equal(after.headers['upload-offset'], '13')
  const replay = await draftAppend(app, '8', created.path, 13, true, '')
  t.equal(replay.statusCode, 200, 'a repeated last request is answered as the first was')
  t.equal(replay.headers['upload-complete'], '?1')
  const more = await draftAppend(app, '8', created.path, 13, true, 'x')
  t.equal(more.statusCode, 400)
  t.equal(more.json().type, 'https://iana.org/assignments/http-problem-types#completed-upload')
})

/** A raw HTTP/1.1 exchange: the interim responses seen, then the final one. */
function exchange (port: number, method: string, path: string, headers: Record<string, string>, body: string, cutAfter?: number): Promise<{ interim: Array<{ status: number, headers: Record<string, string> }>, status?: number, headers?: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const interim: Array<{ status: number, headers: Record<string, string> }> = []
    const request = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (response) => {
      response.resume()
      response.on('end', () => resolve({ interim, status: response.statusCode as number, headers: response.headers }))
    })
    request.on('information', (info) => {
      interim.push({ status: info.statusCode, headers: info.headers as Record<string, string> })
      if (cutAfter !== undefined) {
        request.write(body.slice(0, cutAfter))
        setTimeout(() => { request.destroy(); resolve({ interim }) }, 100)
      }
    })
    request.on('error', (error) => { if (cutAfter === undefined) reject(error) })
    if (cutAfter === undefined) request.end(body)
    else request.flushHeaders()
  })
}

t.test('version 8, example 1 of the draft: a 104 tells where to resume an interrupted upload', async (t) => {
  const { app, dir, port } = await startServer(t, { maxSize: 1000 })
  const representation = 'the whole representation'
  const first = await exchange(port, 'POST', '/uploads', {
    ...V('8'), 'upload-complete': '?1', 'content-length': String(representation.length), 'upload-metadata': encodeMetadata({ filename: 'example1.txt' })
  }, representation, 10)
  t.equal(first.interim.length, 1)
  t.equal(first.interim[0]?.status, 104)
  t.match(first.interim[0]?.headers, { 'upload-draft-interop-version': '8', 'upload-limit': 'min-size=0, max-size=1000' })
  const path = pathOf(first.interim[0]?.headers.location)
  const offset = await waitFor('the 10 bytes to be stored', async () => {
    const head = await draftHead(app, '8', path)
    return head.headers['upload-offset'] === '10' ? head : undefined
  })
  t.equal(offset.statusCode, 204)
  t.equal(offset.headers['upload-length'], String(representation.length), 'Upload-Complete: ?1 with Content-Length gave the length')
  const rest = await draftAppend(app, '8', path, 10, true, representation.slice(10))
  t.equal(rest.statusCode, 200)
  t.equal(await readFile(join(dir, 'example1.txt'), 'utf8'), representation)
  const cancelled = await app.inject({ method: 'DELETE', url: path, headers: V('8') })
  t.equal(cancelled.statusCode, 204)
  t.equal((await draftHead(app, '8', path)).statusCode, 404)
})

t.test('the 104 carries the version of the request, and never goes to an HTTP/1.0 client', async (t) => {
  const { port } = await startServer(t)
  for (const version of ['5', '6']) {
    const { interim, status, headers } = await exchange(port, 'POST', '/uploads', { ...V(version), 'upload-complete': '?0', 'content-length': '3' }, 'abc')
    t.equal(status, 201)
    t.same(interim.map((response) => [response.status, response.headers['upload-draft-interop-version'], response.headers.location]), [[104, version, headers?.location]])
  }
  const raw = await new Promise<string>((resolve, reject) => {
    let text = ''
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('POST /uploads HTTP/1.0\r\nHost: x\r\nUpload-Draft-Interop-Version: 8\r\nUpload-Complete: ?1\r\nContent-Length: 2\r\n\r\nhi')
    })
    socket.on('data', (chunk) => { text += chunk.toString('latin1') })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
  t.match(raw, /^HTTP\/1\.1 201 Created\r\n/, 'the final response first: no 104 before it')
  t.notMatch(raw, /104/)
})

t.test('an offset mismatch is a 409 with the draft\'s problem details', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await draftCreate(app, '8', { 'upload-complete': '?0' }, 'abc')
  const mismatch = await draftAppend(app, '8', path, 1, false, 'x')
  t.equal(mismatch.statusCode, 409)
  t.match(mismatch.headers['content-type'], /^application\/problem\+json/)
  t.equal(mismatch.headers['upload-offset'], '3')
  t.equal(mismatch.headers['upload-complete'], '?0')
  t.same(mismatch.json(), {
    type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
    title: 'offset from request does not match offset of resource',
    'expected-offset': 3,
    'provided-offset': 1
  })
  const v6 = await draftCreate(app, '6', { 'upload-complete': '?0' }, 'abc')
  t.equal((await draftAppend(app, '6', v6.path, 0, false, 'x')).json()['expected-offset'], 3)
  const v5 = await draftCreate(app, '5', { 'upload-complete': '?0' }, 'abc')
  const plain = await draftAppend(app, '5', v5.path, 0, false, 'x')
  t.equal(plain.statusCode, 409)
  t.equal(plain.headers['upload-offset'], '3', 'version 5 has no problem type, only the offset')
  t.same(await descriptorsUnder(dir), [], 'the data files the appends opened beside their loads are closed')
})

t.test('inconsistent lengths are a 400 with the draft\'s problem type', async (t) => {
  const { app } = await buildApp(t)
  const inconsistent = { type: 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length', title: 'inconsistent length values for upload' }
  const atCreation = await draftCreate(app, '8', { 'upload-complete': '?1', 'upload-length': '5' }, 'abc')
  t.equal(atCreation.status, 400)
  t.same(JSON.parse(atCreation.body), inconsistent)
  const { path } = await draftCreate(app, '8', { 'upload-complete': '?0', 'upload-length': '6' }, 'abc')
  const tooShort = await draftAppend(app, '8', path, 3, true, 'd')
  t.equal(tooShort.statusCode, 400, 'complete at 4 bytes, but 6 were announced')
  t.same(tooShort.json(), inconsistent)
  t.equal((await draftAppend(app, '8', path, 3, false, 'd', { 'upload-length': '7' })).statusCode, 400, 'another length')
  t.equal((await draftAppend(app, '8', path, 3, false, 'd', { 'upload-length': '2' })).statusCode, 400, 'a length below the offset')
  const deferred = await draftCreate(app, '8', { 'upload-complete': '?0' }, 'ab')
  t.equal((await draftAppend(app, '8', deferred.path, 2, true, 'c', { 'upload-length': '9' })).statusCode, 400, 'Upload-Length against the complete body')
  const body = new PassThrough()
  const chunked = app.inject({
    method: 'PATCH',
    url: deferred.path,
    headers: { ...V('8'), 'upload-offset': '2', 'upload-complete': '?1', 'content-type': PARTIAL, 'upload-length': '4', 'transfer-encoding': 'chunked' },
    payload: body
  })
  body.end('c')
  const short = await chunked
  t.equal(short.statusCode, 400, 'a chunked body that ends before the declared length')
  t.equal((await draftHead(app, '8', deferred.path)).headers['upload-offset'], '3', 'its bytes are kept')
})

t.test('a length unknown until the last chunked append', async (t) => {
  const { app } = await buildApp(t, { maxSize: 100 })
  const { path } = await draftCreate(app, '6', { 'upload-complete': '?0' })
  t.equal((await draftHead(app, '6', path)).headers['upload-offset'], '0')
  const body = new PassThrough()
  const last = app.inject({
    method: 'PATCH',
    url: path,
    headers: { ...V('6'), 'upload-offset': '0', 'upload-complete': '?1', 'content-type': PARTIAL, 'transfer-encoding': 'chunked' },
    payload: body
  })
  body.end('streamed')
  const answer = await last
  t.equal(answer.statusCode, 201, 'versions 5 and 6 answer 201')
  t.equal(answer.headers['upload-complete'], '?1')
  t.equal(answer.headers['upload-length'], '8')
  t.equal((await draftAppend(app, '6', path, 8, true, 'x')).statusCode, 400, 'version 6 refuses appends to a completed upload')
  const empty = await draftCreate(app, '5', { 'upload-complete': '?1' })
  t.equal(empty.status, 201)
  t.equal(empty.headers['upload-complete'], '?1', 'an empty complete creation is a complete empty upload')
  t.notOk('upload-limit' in empty.headers, 'version 5 has no Upload-Limit')
  const huge = await draftAppend(app, '6', (await draftCreate(app, '6', { 'upload-complete': '?0' })).path, 0, false, 'x', { 'upload-length': '101' })
  t.equal(huge.statusCode, 413)
})

t.test('versions 5 and 6 keep state headers off HEAD and DELETE; 6 and 8 want application/partial-upload', async (t) => {
  const { app } = await buildApp(t)
  for (const version of ['5', '6']) {
    const { path } = await draftCreate(app, version, { 'upload-complete': '?0' })
    t.equal((await draftHead(app, version, path, { 'upload-offset': '0' })).statusCode, 400, `${version}: HEAD with Upload-Offset`)
    const removed = await app.inject({ method: 'DELETE', url: path, headers: { ...V(version), 'upload-complete': '?1' } })
    t.equal(removed.statusCode, 400, `${version}: DELETE with Upload-Complete`)
    t.match(removed.json().message, /Upload-Complete.*no Upload-Complete on this request/)
  }
  const v6 = await draftCreate(app, '6', { 'upload-complete': '?0' })
  t.equal((await draftHead(app, '6', v6.path, { 'upload-length': '3' })).statusCode, 400, '6: HEAD with Upload-Length')
  t.equal((await draftHead(app, '8', v6.path, { 'upload-offset': '0' })).statusCode, 204, '8 has no such rule')
  t.equal((await draftAppend(app, '6', v6.path, 0, false, 'x', { 'content-type': 'application/offset+octet-stream' })).statusCode, 415)
  t.equal((await draftAppend(app, '5', v6.path, 0, false, 'x', { 'content-type': 'text/plain' })).statusCode, 201, '5 has no media type rule')
  for (const [header, value] of [['upload-complete', 'yes'], ['upload-offset', '-1'], ['upload-offset', '1234567890123456']]) {
    const bad = await draftAppend(app, '8', v6.path, 1, false, 'x', { [header as string]: value as string })
    t.equal(bad.statusCode, 400, `${header}: ${value}`)
  }
  const bodiless = await app.inject({ method: 'PATCH', url: v6.path, headers: { ...V('5'), 'upload-offset': '1', 'upload-complete': '?0' } })
  t.equal(bodiless.statusCode, 201, 'a version 5 append without a body (and so without Content-Type) appends nothing')
  t.equal(bodiless.headers['upload-offset'], '1')
  const withParameters = await draftAppend(app, '8', v6.path, 1, false, 'y', { 'upload-complete': '?0;x=1', 'upload-offset': '1;a' })
  t.equal(withParameters.statusCode, 204, 'structured-field parameters are ignored')
})

t.test('OPTIONS, Upload-Limit and expiration by version', async (t) => {
  const { app, dir } = await buildApp(t, { maxSize: 50, expiration: 3_600_000 })
  const v6 = await app.inject({ method: 'OPTIONS', url: '/uploads', headers: V('6') })
  t.equal(v6.statusCode, 204)
  t.equal(v6.headers['upload-limit'], 'min-size=0, max-size=50, expires=3600')
  t.equal((await app.inject({ method: 'OPTIONS', url: '/uploads', headers: V('8') })).headers['upload-limit'], 'min-size=0, max-size=50, max-age=3600')
  t.notOk('upload-limit' in (await app.inject({ method: 'OPTIONS', url: '/uploads', headers: V('5') })).headers)
  t.notOk('upload-limit' in (await app.inject({ method: 'OPTIONS', url: '/uploads' })).headers, 'tus OPTIONS stays as it is')
  const { path } = await draftCreate(app, '8', { 'upload-complete': '?0' }, 'ab')
  t.match((await draftHead(app, '8', path)).headers['upload-limit'], /^min-size=0, max-size=50, max-age=(3599|3600)$/)
  const old = new Date(Date.now() - 4_000_000)
  await utimes(join(dir, '.metadata', `${uidOf(path)}.part`), old, old)
  t.equal((await draftHead(app, '8', path)).statusCode, 410)
  t.equal((await draftCreate(app, '8', { 'upload-complete': '?1' }, 'x'.repeat(51))).status, 413)
})

t.test('an interop version not spoken here is a 400 naming those that are; OPTIONS still answers', async (t) => {
  const { app } = await buildApp(t)
  for (const version of ['3', '7', 'eight']) {
    const response = await draftCreate(app, version, { 'upload-complete': '?0' })
    t.equal(response.status, 400, version)
    t.match(JSON.parse(response.body).message, /is not spoken here: use 5, 6 or 8/)
    for (const method of ['HEAD', 'PATCH', 'DELETE', 'POST'] as const) {
      t.equal((await app.inject({ method, url: '/uploads/AAAAAAAAAAAAAAAAAAAAA', headers: V(version) })).statusCode, 400, `${method} ${version}`)
    }
  }
  t.equal((await app.inject({ method: 'OPTIONS', url: '/uploads', headers: V('7') })).statusCode, 204)
})

t.test('the draft can be turned off: its requests are then tus requests without Tus-Resumable', async (t) => {
  const { app } = await buildApp(t, { ietfDraft: false })
  t.equal((await draftCreate(app, '8', { 'upload-complete': '?0' })).status, 412)
})

t.test('X-HTTP-Method-Override, the guards and the trailing slash work for the draft too', async (t) => {
  const { app, dir } = await buildApp(t, { onRequest: async (request, reply) => { if (request.headers.authorization !== 'ok') await reply.code(401).send() } })
  t.equal((await draftCreate(app, '8', { 'upload-complete': '?0' })).status, 401)
  const auth = { authorization: 'ok' }
  const created = await app.inject({ method: 'POST', url: '/uploads/', headers: { ...V('8'), ...auth, 'upload-complete': '?0', 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'o.txt' }) } })
  t.equal(created.statusCode, 201)
  const path = pathOf(created.headers.location)
  const patched = await app.inject({
    method: 'POST',
    url: path,
    headers: { ...V('8'), ...auth, 'x-http-method-override': 'PATCH', 'upload-offset': '0', 'upload-complete': '?1', 'content-type': PARTIAL },
    payload: 'ok'
  })
  t.equal(patched.statusCode, 200)
  t.equal(await readFile(join(dir, 'o.txt'), 'utf8'), 'ok')
  t.equal((await app.inject({ method: 'POST', url: path, headers: { ...V('8'), ...auth, 'x-http-method-override': 'HEAD' } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: path, headers: { ...V('8'), ...auth } })).statusCode, 400, 'a POST to an upload needs an override')
})

t.test('concatenation is no part of the draft', async (t) => {
  const { app } = await buildApp(t)
  const response = await draftCreate(app, '8', { 'upload-complete': '?0', 'upload-concat': 'partial' })
  t.equal(response.status, 400)
  t.match(JSON.parse(response.body).message, /no part of the resumable-upload draft/)
})

t.test('a Content-Disposition file name, plain or extended', async (t) => {
  const { app, dir } = await buildApp(t)
  const names: Array<[string, string]> = [
    ['inline; filename=plain.txt', 'plain.txt'],
    ['attachment; filename="quoted \\"x\\".txt"', 'quoted "x".txt'],
    ["attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt", 'été.txt'],
    ["attachment; filename*=UTF-8''%E0%A4%A.txt", ''],
    ['inline', '']
  ]
  for (const [disposition, expected] of names) {
    const { path } = await draftCreate(app, '8', { 'upload-complete': '?1', 'content-disposition': disposition }, 'x')
    t.ok((await readdir(dir)).includes(expected === '' ? uidOf(path) : expected), `${disposition} → ${expected === '' ? 'the uid' : expected}`)
  }
})

t.test('bodies that do not fit, and finals, are refused as for tus', async (t) => {
  const { app } = await buildApp(t)
  const chunked = (method: 'POST' | 'PATCH', url: string, headers: Record<string, string>, data: string): Promise<LightMyRequestResponse> => {
    const body = new PassThrough()
    const answer = app.inject({ method, url, headers: { ...V('8'), 'transfer-encoding': 'chunked', ...headers }, payload: body })
    body.end(data)
    return answer
  }
  const created = await chunked('POST', '/uploads', { 'upload-complete': '?0', 'upload-length': '2' }, 'abcd')
  t.equal(created.statusCode, 413, 'a creation body past its length')
  const path = pathOf(created.headers.location)
  t.equal((await draftHead(app, '8', path)).headers['upload-offset'], '2', 'cut at the length')
  const short = await chunked('POST', '/uploads', { 'upload-complete': '?1', 'upload-length': '5' }, 'abc')
  t.equal(short.statusCode, 400, 'complete, but shorter than its length')
  t.match(short.json().type, /inconsistent-upload-length$/)
  const { path: open } = await draftCreate(app, '8', { 'upload-complete': '?0', 'upload-length': '3' })
  const long = await chunked('PATCH', open, { 'upload-offset': '0', 'upload-complete': '?0', 'content-type': PARTIAL }, 'abcdef')
  t.equal(long.statusCode, 413, 'an append past the length')

  const partial = await app.inject({ method: 'POST', url: '/uploads', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-concat': 'partial' } })
  const final = await app.inject({ method: 'POST', url: '/uploads', headers: { 'tus-resumable': '1.0.0', 'upload-concat': `final;${pathOf(partial.headers.location)}` } })
  t.equal((await draftAppend(app, '8', pathOf(final.headers.location), 0, true, 'x')).statusCode, 403, 'a final upload is never appended to')
})

t.test('over HTTP/2 the 104 goes out as an informational HEADERS frame', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { connect: connectHttp2 } = await import('node:http2')
  const { default: tus } = await import('../lib/index.js')
  const app = Fastify({ http2: true })
  await app.register(tus, { uploadPath: t.testdir() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const client = connectHttp2(`http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  t.teardown(() => client.close())
  const informational: Array<Record<string, unknown>> = []
  const status = await new Promise<number>((resolve, reject) => {
    const request = client.request({ ':method': 'POST', ':path': '/uploads', ...V('8'), 'upload-complete': '?1', 'content-length': '2' })
    request.on('headers', (headers) => { informational.push(headers) })
    request.on('response', (headers) => { resolve(headers[':status'] as number) })
    request.on('error', reject)
    request.end('h2')
    request.resume()
  })
  t.equal(status, 201)
  t.match(informational, [{ ':status': 104, 'upload-draft-interop-version': '8', location: /\/uploads\/[\w-]{21}$/ }])
})
