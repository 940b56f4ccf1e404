import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import type { Resource } from '../lib/index.js'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

const quotaOf = (request: FastifyRequest): number => Number(request.headers['x-quota'] ?? 10)

t.test('maxSize as a function of the request: per-user quotas, after the guards', async (t) => {
  const seen: string[] = []
  const { app } = await buildApp(t, {
    onRequest: async (request) => { seen.push('guard'); request.headers['x-quota'] ??= '10' },
    maxSize: async (request) => { seen.push('maxSize'); return quotaOf(request) }
  })
  const options = await app.inject({ method: 'OPTIONS', url: '/uploads', headers: { 'x-quota': '99' } })
  t.equal(options.headers['tus-max-size'], '99')
  t.same(seen, ['maxSize'], 'OPTIONS is never guarded')
  seen.length = 0
  t.equal((await createUpload(app, { 'upload-length': '11' })).response.statusCode, 413)
  t.same(seen, ['guard', 'maxSize'], 'the guard ran first')
  t.equal((await createUpload(app, { 'upload-length': '11', 'x-quota': '20' })).response.statusCode, 201)
  const { path } = await createUpload(app, { 'upload-defer-length': '1' })
  const over = await patchUpload(app, path, 0, 'x'.repeat(11))
  t.equal(over.statusCode, 413)
  t.match(over.json().message, /maximum size of 10 bytes/)
  const draft = await app.inject({ method: 'OPTIONS', url: '/uploads', headers: { 'upload-draft-interop-version': '8', 'x-quota': '7' } })
  t.equal(draft.headers['upload-limit'], 'min-size=0, max-size=7')
})

t.test('a maxSize function that gives no positive integer is a 500 that says so', async (t) => {
  const { app } = await buildApp(t, { maxSize: () => -1 })
  const response = await createUpload(app, { 'upload-length': '1' })
  t.equal(response.response.statusCode, 500)
  t.equal(response.response.json().code, 'FST_TUS_MAX_SIZE_FUNCTION')
  t.match(response.response.json().message, /returned -1/)
})

t.test('onUploadCreate can refuse an upload before anything is written, or change its metadata', async (t) => {
  const created: Resource[] = []
  const { app, dir } = await buildApp(t, {
    onUploadCreate: async (_request, resource) => {
      created.push(resource)
      if (resource.metadata.filename === 'virus.exe') throw Object.assign(new Error('no executables'), { statusCode: 403 })
      if (resource.metadata.filename === 'rename.txt') return { metadata: { ...resource.metadata, filename: 'renamed.txt', owner: 'bob', flag: '' } }
    }
  })
  const refused = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'virus.exe' }) })
  t.equal(refused.response.statusCode, 403)
  t.match(refused.response.json().message, /no executables/)
  t.same(await readdir(dir), [], 'nothing was written')
  const renamed = await createUpload(app, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'rename.txt' }) })
  t.equal(renamed.response.statusCode, 201)
  const head = await headUpload(app, renamed.path)
  t.equal(head.headers['upload-metadata'], `${encodeMetadata({ filename: 'renamed.txt', owner: 'bob' })},flag`)
  await patchUpload(app, renamed.path, 0, 'ok')
  t.equal(await readFile(join(dir, 'renamed.txt'), 'utf8'), 'ok')
  const plain = await createUpload(app, { 'upload-length': '1' })
  t.equal(plain.response.statusCode, 201, 'returning nothing changes nothing')
  t.match(created[0], { fileSize: 1, offset: 0, metadata: { filename: 'virus.exe' }, fileName: 'virus.exe' })
  let emptiedCalls = 0
  const emptied = await buildApp(t, { onUploadCreate: () => { emptiedCalls++; return { metadata: {} } } })
  const bare = await createUpload(emptied.app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'gone.txt' }) })
  t.notOk('upload-metadata' in (await headUpload(emptied.app, bare.path)).headers, 'metadata taken away')
  const draft = await emptied.app.inject({ method: 'POST', url: '/uploads', headers: { 'upload-draft-interop-version': '8', 'upload-complete': '?1' }, payload: 'd' })
  t.equal(draft.statusCode, 201)
  t.equal(emptiedCalls, 2, 'draft creations go through it too')
})

t.test('onUploadTerminate hears of every termination', async (t) => {
  const terminated: Resource[] = []
  const { app } = await buildApp(t, { onUploadTerminate: (_request, resource) => { terminated.push(resource) } })
  const { path } = await createUpload(app, { 'upload-length': '5', 'upload-metadata': encodeMetadata({ filename: 'bye.txt' }) })
  await patchUpload(app, path, 0, 'ab')
  t.equal((await app.inject({ method: 'DELETE', url: path, headers: TUS })).statusCode, 204)
  t.match(terminated, [{ uid: uidOf(path), offset: 2, fileSize: 5, fileName: 'bye.txt' }])
})

t.test('onUploadProgress is throttled, and told where a body stopped', async (t) => {
  const offsets: number[] = []
  const { app } = await buildApp(t, { progressInterval: 20, onUploadProgress: (_request, resource) => { offsets.push(resource.offset) } })
  const { path } = await createUpload(app, { 'upload-length': '100' })
  const body = new PassThrough()
  const answer = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  for (let index = 0; index < 10; index++) {
    body.write('x'.repeat(10))
    await new Promise((resolve) => setTimeout(resolve, 8))
  }
  body.end()
  t.equal((await answer).statusCode, 204)
  t.ok(offsets.length >= 2 && offsets.length < 10, `not once per chunk (${offsets.length} calls for 10 chunks)`)
  t.same([...offsets].sort((a, b) => a - b), offsets, 'offsets only grow')
  t.equal(offsets.at(-1), 100, 'the last call has where the body stopped')

  const quiet: number[] = []
  const slow = await buildApp(t, { progressInterval: 3_600_000, onUploadProgress: (_request, resource) => { quiet.push(resource.offset) } })
  const upload = await createUpload(slow.app, { 'upload-length': '6', 'content-type': OCTET }, '/uploads', 'abc')
  t.equal(upload.response.statusCode, 201)
  await patchUpload(slow.app, upload.path, 3, 'def')
  t.same(quiet, [3, 6], 'a long interval: only the calls when each body stopped')
  const { createHash } = await import('node:crypto')
  const summed = await createUpload(slow.app, { 'upload-length': '2' })
  const checked = await patchUpload(slow.app, summed.path, 0, 'ok', { 'upload-checksum': `sha1 ${createHash('sha1').update('ok').digest('base64')}` })
  t.equal(checked.statusCode, 204, 'a checksum and the progress see the same bytes')
  const wrong = await createUpload(slow.app, { 'upload-length': '2' })
  t.equal((await patchUpload(slow.app, wrong.path, 0, 'ok', { 'upload-checksum': 'sha1 AAAA' })).statusCode, 460)
  t.same(quiet.slice(2), [2, 0], 'a discarded body reports the offset it left')
})

t.test('an onUploadProgress that throws is logged; the upload goes on', async (t) => {
  const logs: string[] = []
  const { app, dir } = await buildApp(t, { progressInterval: 1, onUploadProgress: () => { throw new Error('progress bar broke') } }, {
    logger: { level: 'error', stream: { write: (line: string) => { logs.push(line) } } }
  })
  const { path } = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'p.txt' }) })
  t.equal((await patchUpload(app, path, 0, 'abc')).statusCode, 204)
  t.equal(await readFile(join(dir, 'p.txt'), 'utf8'), 'abc')
  t.match(logs.join(''), /onUploadProgress failed/)
})

t.test('an onUploadDone that throws makes that PATCH a 500, and the upload stays complete', async (t) => {
  const { app, dir } = await buildApp(t, { onUploadDone: () => { throw new Error('the thumbnailer is down') } })
  const { path } = await createUpload(app, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'done.txt' }) })
  const patched = await patchUpload(app, path, 0, 'ok')
  t.equal(patched.statusCode, 500)
  t.match(patched.json(), { message: 'the thumbnailer is down' })
  const head = await headUpload(app, path)
  t.equal(head.headers['upload-offset'], '2', 'complete: a retry of the client finds nothing left to send')
  t.equal(await readFile(join(dir, 'done.txt'), 'utf8'), 'ok')
})
