import Fastify from 'fastify'
import t from 'tap'
import tus from '../lib/index.js'
import { RecordCache, type FileIdentity } from '../lib/store/record-cache.js'
import type { UploadRecord } from '../lib/store/store.js'
import { TUS, buildApp, createUpload, headUpload, patchUpload } from './helpers.js'

t.test('a record read again is not parsed again while its file is the same', async (t) => {
  let loads = 0
  const { app } = await buildApp(t, { jsonLoads: (text) => { loads++; return JSON.parse(text) } })
  const { path } = await createUpload(app, { 'upload-length': '3' })
  t.equal((await headUpload(app, path)).headers['upload-offset'], '0')
  t.equal(loads, 1, 'read once')
  t.equal((await headUpload(app, path)).statusCode, 200)
  t.equal((await patchUpload(app, path, 0, 'a')).statusCode, 204)
  t.equal((await headUpload(app, path)).headers['upload-offset'], '1', 'the offset is the data, never cached')
  t.equal(loads, 1, 'two HEADs and a PATCH later, still once')
  t.equal((await patchUpload(app, path, 1, 'bc')).statusCode, 204, 'completes: the record is replaced')
  t.equal((await headUpload(app, path)).headers['upload-offset'], '3')
  t.equal(loads, 2, 'the replaced record is read again')
})

t.test('a record another process replaced or removed is read again', async (t) => {
  // two registrations on one directory know each other only through its files, as two processes do
  const dir = t.testdir()
  const apps = [Fastify(), Fastify()]
  for (const app of apps) {
    await app.register(tus, { uploadPath: dir, locker: 'file' })
    t.teardown(() => app.close())
  }
  const [here, there] = apps as [ReturnType<typeof Fastify>, ReturnType<typeof Fastify>]
  const { path } = await createUpload(here, { 'upload-defer-length': '1' })
  t.equal((await headUpload(here, path)).headers['upload-defer-length'], '1')
  const declared = await there.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'upload-offset': '0', 'upload-length': '2', 'content-type': 'application/offset+octet-stream' }, payload: '' })
  t.equal(declared.statusCode, 204)
  const seen = await headUpload(here, path)
  t.equal(seen.headers['upload-length'], '2', 'the length the other declared')
  t.equal(seen.headers['upload-defer-length'], undefined)
  t.equal((await there.inject({ method: 'DELETE', url: path, headers: TUS })).statusCode, 204)
  t.equal((await headUpload(here, path)).statusCode, 404, 'the upload the other terminated is gone')
})

const identity = (ino: number): FileIdentity => ({ dev: 1, ino, size: 10, mtimeMs: 5, ctimeMs: 5 })
const record = (uid: string) => ({ uid }) as unknown as UploadRecord

t.test('the cache answers only for the same file, and forgets the entry used longest ago', async (t) => {
  const cache = new RecordCache(2)
  cache.set('a', identity(1), record('a'))
  t.same(cache.get('a', identity(1)), { uid: 'a' })
  t.equal(cache.get('a', identity(2)), undefined, 'another inode')
  t.equal(cache.get('a', { ...identity(1), ctimeMs: 6 }), undefined, 'changed since')
  cache.set('b', identity(3), record('b'))
  t.ok(cache.get('a', identity(1)), 'a is now the one used last')
  cache.set('c', identity(4), record('c'))
  t.notOk(cache.has('b'), 'b was used longest ago: gone')
  t.ok(cache.has('a'))
  t.ok(cache.has('c'))
  cache.delete('a')
  t.notOk(cache.has('a'))
})
