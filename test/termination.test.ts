import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

const remove = (app: Awaited<ReturnType<typeof buildApp>>['app'], path: string) => app.inject({ method: 'DELETE', url: path, headers: TUS })

t.test('DELETE forgets an unfinished upload: data, record and name reservation', async (t) => {
  const { app, dir } = await buildApp(t)
  const metadata = encodeMetadata({ filename: 'report.pdf' })
  const { path } = await createUpload(app, { 'upload-length': '10', 'upload-metadata': metadata })
  await patchUpload(app, path, 0, 'abc')
  t.equal((await createUpload(app, { 'upload-length': '1', 'upload-metadata': metadata })).response.statusCode, 409, 'the name is reserved')
  const response = await remove(app, path)
  t.equal(response.statusCode, 204)
  t.equal(response.headers['tus-resumable'], '1.0.0')
  t.equal((await headUpload(app, path)).statusCode, 404)
  t.equal((await patchUpload(app, path, 3, 'd')).statusCode, 404)
  t.equal((await remove(app, path)).statusCode, 404)
  t.same(await readdir(join(dir, '.metadata')), [])
  t.equal((await createUpload(app, { 'upload-length': '1', 'upload-metadata': metadata })).response.statusCode, 201, 'the name is free again')
})

t.test('DELETE of a completed upload forgets it but leaves the file', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'kept.txt' }) })
  await patchUpload(app, path, 0, 'ok')
  t.equal((await remove(app, path)).statusCode, 204)
  t.equal(await readFile(join(dir, 'kept.txt'), 'utf8'), 'ok')
  t.same(await readdir(join(dir, '.metadata')), [])
})

t.test('DELETE ends a running PATCH first', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '10' })
  const body = new PassThrough()
  const running = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  body.write('abc')
  const deadline = Date.now() + 5000
  while ((await headUpload(app, path)).headers['upload-offset'] !== '3' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await remove(app, path)).statusCode, 204)
  t.equal((await running).statusCode, 409)
  t.same(await readdir(join(dir, '.metadata')), [], 'nothing of the upload is left')
  t.equal(uidOf(path).length, 21)
})
