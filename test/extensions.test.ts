import { readdir } from 'node:fs/promises'
import t from 'tap'
import { OCTET, TUS, buildApp, createUpload } from './helpers.js'

t.test('each optional extension can be turned off, and Tus-Extension says exactly what is on', async (t) => {
  const { app, dir } = await buildApp(t, { disabledExtensions: ['creation-with-upload', 'creation-defer-length', 'termination'] })
  const options = await app.inject({ method: 'OPTIONS', url: '/uploads' })
  t.equal(options.headers['tus-extension'], 'creation,checksum,checksum-trailer,concatenation,concatenation-unfinished')

  const withBody = await createUpload(app, { 'upload-length': '3', 'content-type': OCTET }, '/uploads', 'abc')
  t.equal(withBody.response.statusCode, 400)
  t.equal(withBody.response.json().code, 'FST_TUS_EXTENSION_DISABLED')
  t.match(withBody.response.json().message, /"creation-with-upload" is turned off/)
  const deferred = await createUpload(app, { 'upload-defer-length': '1' })
  t.equal(deferred.response.statusCode, 400)
  t.match(deferred.response.json().message, /"creation-defer-length" is turned off/)
  t.same(await readdir(dir), [], 'nothing was created')

  const { path } = await createUpload(app, { 'upload-length': '3' })
  for (const request of [
    { method: 'DELETE' as const, url: path, headers: TUS },
    { method: 'POST' as const, url: path, headers: { ...TUS, 'x-http-method-override': 'DELETE' } }
  ]) {
    const response = await app.inject(request)
    t.equal(response.statusCode, 400)
    t.match(response.json().message, /"termination" is turned off/)
  }
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 200, 'the upload is still there')
})
