import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

t.test('OPTIONS describes the server without needing Tus-Resumable', async (t) => {
  const { app } = await buildApp(t, { maxSize: 1000 })
  for (const url of ['/uploads', '/uploads/', '/uploads/AAAAAAAAAAAAAAAAAAAAA']) {
    const response = await app.inject({ method: 'OPTIONS', url })
    t.equal(response.statusCode, 204, url)
    t.equal(response.headers['tus-version'], '1.0.0')
    t.equal(response.headers['tus-resumable'], '1.0.0')
    t.equal(response.headers['tus-extension'], 'creation,creation-with-upload,creation-defer-length,termination,checksum,checksum-trailer,concatenation,concatenation-unfinished')
    t.equal(response.headers['tus-checksum-algorithm'], 'sha1,md5,sha256,sha512')
    t.equal(response.headers['tus-max-size'], '1000')
  }
  const unlimited = await buildApp(t)
  const response = await unlimited.app.inject({ method: 'OPTIONS', url: '/uploads' })
  t.notOk('tus-max-size' in response.headers, 'no Tus-Max-Size without a limit')
})

t.test('an upload in two PATCHes lands as the named file', async (t) => {
  const { app, dir } = await buildApp(t)
  const { response, path } = await createUpload(app, { 'upload-length': '11', 'upload-metadata': encodeMetadata({ filename: 'hello.txt' }) })
  t.equal(response.statusCode, 201)
  t.match(response.headers.location, /^http:\/\/localhost:80\/uploads\/[A-Za-z0-9_-]{21}$/)
  const first = await patchUpload(app, path, 0, 'hello ')
  t.equal(first.statusCode, 204)
  t.equal(first.headers['upload-offset'], '6')
  const head = await headUpload(app, path)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '6')
  t.equal(head.headers['upload-length'], '11')
  t.equal(head.headers['cache-control'], 'no-store')
  const second = await patchUpload(app, path, 6, 'world')
  t.equal(second.statusCode, 204)
  t.equal(second.headers['upload-offset'], '11')
  t.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'hello world')
  const done = await headUpload(app, path)
  t.equal(done.headers['upload-offset'], '11', 'a completed upload keeps answering HEAD')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`], 'only the record stays')
})

t.test('Tus-Resumable missing or wrong is 412 with Tus-Version, before anything else', async (t) => {
  const { app } = await buildApp(t)
  for (const headers of [{}, { 'tus-resumable': '0.2.2' }]) {
    const response = await app.inject({ method: 'POST', url: '/uploads', headers })
    t.equal(response.statusCode, 412)
    t.equal(response.headers['tus-version'], '1.0.0')
    t.equal(response.headers['tus-resumable'], '1.0.0')
    t.equal(response.json().code, 'FST_TUS_UNSUPPORTED_VERSION')
  }
  const patch = await app.inject({ method: 'PATCH', url: '/uploads/AAAAAAAAAAAAAAAAAAAAA', headers: { 'content-type': 'text/plain', 'upload-offset': 'x' } })
  t.equal(patch.statusCode, 412, 'the version wins over a bad media type and offset')
  const { path } = await createUpload(app, { 'upload-length': '1' })
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: {} })).statusCode, 412)
  t.equal((await app.inject({ method: 'DELETE', url: path })).statusCode, 412)
  t.same(TUS, { 'tus-resumable': '1.0.0' })
})
