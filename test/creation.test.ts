import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { MemoryLocker, type Locker } from '../lib/index.js'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, uidOf } from './helpers.js'

t.test('Upload-Length must be a non-negative decimal integer of at most 2^53-1', async (t) => {
  const { app } = await buildApp(t)
  for (const good of ['0', '1', '007', '9007199254740991']) {
    const { response } = await createUpload(app, { 'upload-length': good, 'upload-metadata': encodeMetadata({ filename: `f${good}` }) })
    t.equal(response.statusCode, 201, `accepts ${good}`)
  }
  for (const bad of ['-1', '+1', ' 1', '1 ', '1e3', '0x10', '1.5', '', 'abc', '9007199254740992', '12345678901234567', '5, 5']) {
    const { response } = await createUpload(app, { 'upload-length': bad })
    t.equal(response.statusCode, 400, `refuses ${JSON.stringify(bad)}`)
    t.equal(response.json().code, 'FST_TUS_INVALID_HEADER')
    t.match(response.json().message, /Upload-Length/)
  }
})

t.test('exactly one of Upload-Length and Upload-Defer-Length: 1', async (t) => {
  const { app } = await buildApp(t)
  const neither = await createUpload(app, {})
  t.equal(neither.response.statusCode, 400)
  t.equal(neither.response.json().code, 'FST_TUS_LENGTH_REQUIRED')
  const both = await createUpload(app, { 'upload-length': '5', 'upload-defer-length': '1' })
  t.equal(both.response.statusCode, 400)
  t.equal(both.response.json().code, 'FST_TUS_LENGTH_CONFLICT')
  for (const value of ['0', '2', 'true', '']) {
    const { response } = await createUpload(app, { 'upload-defer-length': value })
    t.equal(response.statusCode, 400, `Upload-Defer-Length: ${value}`)
    t.match(response.json().message, /Upload-Defer-Length.*exactly 1/)
  }
  const deferred = await createUpload(app, { 'upload-defer-length': '1' })
  t.equal(deferred.response.statusCode, 201)
  const head = await headUpload(app, deferred.path)
  t.equal(head.headers['upload-defer-length'], '1')
  t.notOk('upload-length' in head.headers)
  t.equal(head.headers['upload-offset'], '0')
})

t.test('a length above maxSize is 413 and nothing is stored', async (t) => {
  const { app, dir } = await buildApp(t, { maxSize: 100 })
  const { response } = await createUpload(app, { 'upload-length': '101' })
  t.equal(response.statusCode, 413)
  t.equal(response.json().code, 'FST_TUS_TOO_LARGE')
  t.match(response.json().message, /maximum size of 100/)
  t.same(await readdir(dir), [])
  t.equal((await createUpload(app, { 'upload-length': '100' })).response.statusCode, 201)
})

t.test('Upload-Metadata is decoded strictly', async (t) => {
  const { app } = await buildApp(t)
  const bad: Record<string, RegExp> = {
    '': /key "" is empty/,
    ',': /key "" is empty/,
    'name aGk=,': /key "" is empty/,
    'name aGk=,name aGk=': /appears twice/,
    'name a b': /holds a space/,
    'name ***': /not base64/,
    'name aGk': /not base64/,
    'name aGk==': /not base64/,
    'na\tme aGk=': /key .* is empty or holds a space/
  }
  for (const [header, message] of Object.entries(bad)) {
    const { response } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': header })
    t.equal(response.statusCode, 400, JSON.stringify(header))
    t.equal(response.json().code, 'FST_TUS_INVALID_METADATA')
    t.match(response.json().message, message)
  }
  const header = 'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential, empty ,__proto__ eA=='
  const { response, path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': header })
  t.equal(response.statusCode, 201)
  t.equal((await headUpload(app, path)).headers['upload-metadata'], header, 'HEAD returns it exactly as received')
})

t.test('Location follows the request: trustProxy, relativeLocation, route params', async (t) => {
  const proxied = await buildApp(t, {}, { trustProxy: true })
  const behindProxy = await createUpload(proxied.app, { 'upload-length': '1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'files.example.com' })
  t.match(behindProxy.response.headers.location, /^https:\/\/files\.example\.com\/uploads\/[\w-]{21}$/)
  const direct = await buildApp(t)
  const notTrusted = await createUpload(direct.app, { 'upload-length': '1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example.com' })
  t.match(notTrusted.response.headers.location, /^http:\/\/localhost:80\/uploads\//, 'forwarded headers count only with trustProxy')
  const relative = await buildApp(t, { relativeLocation: true, uploadUrl: '/users/:name/files', uploadPath: `${t.testdir()}/{name}` })
  const { response } = await createUpload(relative.app, { 'upload-length': '1' }, '/users/b%C3%B6b%20x/files')
  t.match(response.headers.location, /^\/users\/b%C3%B6b%20x\/files\/[\w-]{21}$/)
})

t.test('creation-with-upload stores the body as a first PATCH would', async (t) => {
  const { app, dir } = await buildApp(t)
  const { response, path } = await createUpload(app, { 'upload-length': '10', 'content-type': OCTET }, '/uploads', 'abcd')
  t.equal(response.statusCode, 201)
  t.equal(response.headers['upload-offset'], '4')
  t.equal((await headUpload(app, path)).headers['upload-offset'], '4')
  t.equal(await readFile(join(dir, '.metadata', `${uidOf(path)}.part`), 'utf8'), 'abcd')

  const whole = await createUpload(app, { 'upload-length': '3', 'content-type': OCTET, 'upload-metadata': encodeMetadata({ filename: 'abc.txt' }) }, '/uploads', 'abc')
  t.equal(whole.response.headers['upload-offset'], '3')
  t.equal(await readFile(join(dir, 'abc.txt'), 'utf8'), 'abc', 'a body with every byte completes the upload')

  const empty = await createUpload(app, { 'upload-length': '3', 'content-type': OCTET }, '/uploads', '')
  t.equal(empty.response.statusCode, 201)
  t.equal(empty.response.headers['upload-offset'], '0')
})

t.test('creation-with-upload refuses a body of another type (415) or too long (413) before creating', async (t) => {
  const { app, dir } = await buildApp(t)
  const typed = await createUpload(app, { 'upload-length': '10', 'content-type': 'text/plain' }, '/uploads', 'abcd')
  t.equal(typed.response.statusCode, 415)
  t.equal(typed.response.json().code, 'FST_TUS_UNSUPPORTED_MEDIA_TYPE')
  const untyped = await app.inject({ method: 'POST', url: '/uploads', headers: { ...TUS, 'upload-length': '10' }, payload: Buffer.from('abcd') })
  t.equal(untyped.statusCode, 415, 'a body without Content-Type')
  t.match(untyped.json().message, /got "nothing"/)
  const long = await createUpload(app, { 'upload-length': '3', 'content-type': OCTET }, '/uploads', 'abcd')
  t.equal(long.response.statusCode, 413)
  t.match(long.response.json().message, /pass Upload-Length 3/)
  t.same(await readdir(dir), [], 'no upload was created')
})

t.test('Upload-Length: 0 completes at once', async (t) => {
  const done: unknown[] = []
  const { app, dir } = await buildApp(t, {
    onUploadDone: async (_request, resource, filePath) => { done.push({ resource, filePath }) }
  })
  const { response, path } = await createUpload(app, { 'upload-length': '0', 'upload-metadata': encodeMetadata({ filename: 'empty.bin' }) })
  t.equal(response.statusCode, 201)
  t.equal((await stat(join(dir, 'empty.bin'))).size, 0)
  t.match(done, [{ resource: { uid: uidOf(path), fileSize: 0, offset: 0, fileName: 'empty.bin' }, filePath: join(dir, 'empty.bin') }])
  const head = await headUpload(app, path)
  t.equal(head.headers['upload-offset'], '0')
  t.equal(head.headers['upload-length'], '0')
})

t.test('only a creation with a body takes the upload\'s lock: nobody else knows a new upload before its 201', async (t) => {
  const memory = new MemoryLocker()
  const keys: string[] = []
  const locker: Locker = {
    acquire: async (key) => { keys.push(key); return await memory.acquire(key) },
    tryAcquire: async (key) => { keys.push(key); return await memory.tryAcquire(key) }
  }
  const { app, dir } = await buildApp(t, { locker })
  const empty = await createUpload(app, { 'upload-length': '0', 'upload-metadata': encodeMetadata({ filename: 'empty.bin' }) })
  t.equal(empty.response.statusCode, 201)
  t.equal((await stat(join(dir, 'empty.bin'))).size, 0, 'an empty upload is completed without the lock')
  const bodiless = await createUpload(app, { 'upload-length': '4' })
  t.equal(bodiless.response.statusCode, 201)
  t.same(keys, [], 'no lock taken by creations without a body')
  const withBody = await createUpload(app, { 'upload-length': '4', 'content-type': OCTET }, '/uploads', 'ab')
  t.equal(withBody.response.headers['upload-offset'], '2')
  t.same(keys, [join(dir, '.metadata', `${uidOf(withBody.path)}.lock`)], 'creation-with-upload takes the upload\'s lock')
})

t.test('X-HTTP-Method-Override on the creation URL can only say POST', async (t) => {
  const { app } = await buildApp(t)
  t.equal((await createUpload(app, { 'upload-length': '1', 'x-http-method-override': 'POST' })).response.statusCode, 201)
  const { response } = await createUpload(app, { 'upload-length': '1', 'x-http-method-override': 'PATCH' })
  t.equal(response.statusCode, 400)
  t.match(response.json().message, /X-Http-Method-Override/)
})

t.test('creation-with-upload: a chunked body longer than Upload-Length is cut there, 413 with the upload\'s Location', async (t) => {
  const { app, dir } = await buildApp(t)
  const body = new PassThrough()
  const answer = app.inject({
    method: 'POST',
    url: '/uploads',
    headers: { ...TUS, 'upload-length': '3', 'content-type': OCTET, 'transfer-encoding': 'chunked', 'upload-metadata': encodeMetadata({ filename: 'three.txt' }) },
    payload: body
  })
  body.end('abcdef')
  const response = await answer
  t.equal(response.statusCode, 413)
  t.equal(response.headers['upload-offset'], '3')
  t.match(response.headers.location, /\/uploads\/[\w-]{21}$/)
  t.equal(await readFile(join(dir, 'three.txt'), 'utf8'), 'abc')
})
