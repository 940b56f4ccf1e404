import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'
import { startServer } from './server.js'

const digest = (algorithm: string, data: string | Buffer): string => createHash(algorithm).update(data).digest('base64')
const checksum = (algorithm: string, data: string | Buffer): string => `${algorithm} ${digest(algorithm, data)}`
const partOf = (dir: string, path: string): string => join(dir, '.metadata', `${uidOf(path)}.part`)

t.test('OPTIONS offers the checksum algorithms', async (t) => {
  const { app } = await buildApp(t, { checksumAlgorithms: ['sha256', 'sha1'] })
  const response = await app.inject({ method: 'OPTIONS', url: '/uploads' })
  t.equal(response.headers['tus-checksum-algorithm'], 'sha256,sha1')
  t.match(response.headers['tus-extension'], /,checksum,checksum-trailer,/)
})

t.test('a PATCH whose body matches its checksum is stored, for every algorithm offered', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '8', 'upload-metadata': encodeMetadata({ filename: 'sum.txt' }) })
  let offset = 0
  for (const [algorithm, piece] of [['sha1', 'ab'], ['md5', 'cd'], ['sha256', 'ef'], ['sha512', 'gh']] as const) {
    const response = await patchUpload(app, path, offset, piece, { 'upload-checksum': checksum(algorithm, piece) })
    t.equal(response.statusCode, 204, algorithm)
    offset += 2
    t.equal(response.headers['upload-offset'], String(offset))
  }
  t.equal(await readFile(join(dir, 'sum.txt'), 'utf8'), 'abcdefgh')
  t.same((await readFile(join(dir, '.metadata', `${uidOf(path)}.json`), 'utf8')).includes('unverifiedFrom'), false, 'no mark is left')
})

t.test('a mismatch is 460 and the chunk is discarded: the upload is exactly as before', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '10' })
  await patchUpload(app, path, 0, 'abc')
  const response = await patchUpload(app, path, 3, 'defg', { 'upload-checksum': checksum('sha1', 'dxfg') })
  t.equal(response.statusCode, 460)
  t.equal(response.json().code, 'FST_TUS_CHECKSUM_MISMATCH')
  t.match(response.json().message, /sha1 checksum/)
  t.equal((await headUpload(app, path)).headers['upload-offset'], '3')
  t.equal(await readFile(partOf(dir, path), 'utf8'), 'abc')
  t.equal((await patchUpload(app, path, 3, 'defg', { 'upload-checksum': checksum('sha1', 'defg') })).statusCode, 204)
})

t.test('an algorithm not offered or a malformed Upload-Checksum is 400 before a byte is written', async (t) => {
  const { app, dir } = await buildApp(t, { checksumAlgorithms: ['sha256'] })
  const { path } = await createUpload(app, { 'upload-length': '10' })
  await patchUpload(app, path, 0, 'abc')
  const unknown = await patchUpload(app, path, 3, 'd', { 'upload-checksum': checksum('sha1', 'd') })
  t.equal(unknown.statusCode, 400)
  t.equal(unknown.json().code, 'FST_TUS_CHECKSUM_ALGORITHM')
  t.match(unknown.json().message, /"sha1" is not offered; use one of: sha256/)
  for (const value of ['sha256', 'sha256 ***', 'sha256  abc=', '']) {
    const malformed = await patchUpload(app, path, 3, 'd', { 'upload-checksum': value })
    t.equal(malformed.statusCode, 400, JSON.stringify(value))
    t.match(malformed.json().message, /Upload-Checksum/)
  }
  t.equal(await readFile(partOf(dir, path), 'utf8'), 'abc')
})

t.test('creation-with-upload verifies its body too', async (t) => {
  const { app, dir } = await buildApp(t)
  const good = await createUpload(app, { 'upload-length': '4', 'content-type': OCTET, 'upload-checksum': checksum('md5', 'abcd'), 'upload-metadata': encodeMetadata({ filename: 'c.txt' }) }, '/uploads', 'abcd')
  t.equal(good.response.statusCode, 201)
  t.equal(await readFile(join(dir, 'c.txt'), 'utf8'), 'abcd')
  const bad = await createUpload(app, { 'upload-length': '4', 'content-type': OCTET, 'upload-checksum': checksum('md5', 'abce') }, '/uploads', 'abcd')
  t.equal(bad.response.statusCode, 460)
  t.match(bad.response.headers.location, /\/uploads\/[\w-]{21}$/, 'the upload exists, empty')
  t.equal((await headUpload(app, bad.path)).headers['upload-offset'], '0')
  const unknown = await createUpload(app, { 'upload-length': '4', 'content-type': OCTET, 'upload-checksum': 'crc32 AAAA' }, '/uploads', 'abcd')
  t.equal(unknown.response.statusCode, 400, 'an unknown algorithm refuses the creation')
  t.equal(unknown.path, '')
})

t.test('a body with a checksum that stops early is discarded whole: cut at the length, or interrupted', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '4' })
  const long = new PassThrough()
  const answer = app.inject({
    method: 'PATCH',
    url: path,
    headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked', 'upload-checksum': checksum('sha1', 'abcdef') },
    payload: long
  })
  long.end('abcdef')
  const cut = await answer
  t.equal(cut.statusCode, 413)
  t.equal(cut.headers['upload-offset'], '0')
  t.equal((await stat(partOf(dir, path))).size, 0)

  const stalled = new PassThrough()
  const first = app.inject({
    method: 'PATCH',
    url: path,
    headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked', 'upload-checksum': checksum('sha1', 'abcd') },
    payload: stalled
  })
  stalled.write('ab')
  const deadline = Date.now() + 5000
  while ((await stat(partOf(dir, path))).size < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await headUpload(app, path)).headers['upload-offset'], '0', 'unverified bytes do not count')
  const second = await patchUpload(app, path, 0, 'wxyz')
  t.equal(second.statusCode, 204, 'the new request finds the unverified bytes gone')
  t.equal((await first).statusCode, 409)
  t.equal(await readFile(join(dir, uidOf(path)), 'utf8'), 'wxyz')
})

t.test('bytes a crash left unverified do not count and are cut off by the next PATCH', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '6', 'upload-metadata': encodeMetadata({ filename: 'crash.txt' }) })
  await patchUpload(app, path, 0, 'abc')
  const recordPath = join(dir, '.metadata', `${uidOf(path)}.json`)
  const record = JSON.parse(await readFile(recordPath, 'utf8'))
  await writeFile(recordPath, JSON.stringify({ ...record, unverifiedFrom: 3 }))
  await writeFile(partOf(dir, path), 'abcXY')
  t.equal((await headUpload(app, path)).headers['upload-offset'], '3')
  t.equal((await patchUpload(app, path, 3, 'def')).statusCode, 204)
  t.equal(await readFile(join(dir, 'crash.txt'), 'utf8'), 'abcdef')
})

/** A chunked PATCH over a real socket, with trailers. */
function patchWithTrailers (port: number, path: string, body: string, headers: Record<string, string>, trailers: Record<string, string>): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'PATCH',
      path,
      headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked', ...headers }
    }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => resolve({ status: response.statusCode as number, body: text }))
    })
    request.on('error', reject)
    request.write(body.slice(0, 2))
    request.write(body.slice(2))
    request.addTrailers(trailers)
    request.end()
  })
}

async function trailerCase (t: Test, app: FastifyInstance, port: number, headers: Record<string, string>, trailers: Record<string, string>): Promise<{ status: number, code: string | undefined, offset: string | undefined }> {
  const { path } = await createUpload(app, { 'upload-length': '4' })
  const answer = await patchWithTrailers(port, path, 'abcd', headers, trailers)
  t.ok(path)
  return { status: answer.status, code: answer.body === '' ? undefined : JSON.parse(answer.body).code, offset: (await headUpload(app, path)).headers['upload-offset'] as string }
}

t.test('checksum-trailer: the checksum of a chunked body may come as its trailer', async (t) => {
  const { app, port } = await startServer(t)
  const announced = { trailer: 'Upload-Checksum' }
  t.match(await trailerCase(t, app, port, announced, { 'Upload-Checksum': checksum('sha256', 'abcd') }), { status: 204, offset: '4' })
  t.match(await trailerCase(t, app, port, announced, { 'Upload-Checksum': checksum('sha512', 'abcd') }), { status: 204, offset: '4' }, 'any offered algorithm')
  t.match(await trailerCase(t, app, port, announced, { 'Upload-Checksum': checksum('sha256', 'abce') }), { status: 460, offset: '0' })
  t.match(await trailerCase(t, app, port, announced, {}), { status: 400, code: 'FST_TUS_CHECKSUM_TRAILER', offset: '0' }, 'announced, never sent')
  t.match(await trailerCase(t, app, port, announced, { 'Upload-Checksum': 'crc32 AAAA' }), { status: 400, code: 'FST_TUS_CHECKSUM_ALGORITHM', offset: '0' })
  t.match(await trailerCase(t, app, port, {}, { 'Upload-Checksum': checksum('sha256', 'abcd') }), { status: 400, code: 'FST_TUS_CHECKSUM_TRAILER', offset: '0' }, 'unannounced: it could not be verified')
  t.match(await trailerCase(t, app, port, { trailer: 'X-Other' }, { 'X-Other': 'x' }), { status: 204, offset: '4' }, 'other trailers are no checksum')
})

t.test('checksums can be turned off', async (t) => {
  const off = await buildApp(t, { disabledExtensions: ['checksum'] })
  const options = await off.app.inject({ method: 'OPTIONS', url: '/uploads' })
  t.equal(options.headers['tus-extension'], 'creation,creation-with-upload,creation-defer-length,termination,concatenation,concatenation-unfinished', 'checksum-trailer goes with it')
  t.notOk('tus-checksum-algorithm' in options.headers)
  const { path } = await createUpload(off.app, { 'upload-length': '2' })
  t.equal((await patchUpload(off.app, path, 0, 'ab', { 'upload-checksum': 'nope at-all' })).statusCode, 204, 'Upload-Checksum is an unknown header then')

  const { app, port } = await startServer(t, { disabledExtensions: ['checksum-trailer'] })
  t.match(await trailerCase(t, app, port, { trailer: 'Upload-Checksum' }, { 'Upload-Checksum': checksum('sha256', 'abce') }), { status: 204, offset: '4' }, 'trailers are not looked at')
})
