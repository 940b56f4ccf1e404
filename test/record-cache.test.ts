import { createHash } from 'node:crypto'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import tus from '../lib/index.js'
import { RecordCache, type FileIdentity } from '../lib/store/record-cache.js'
import type { UploadRecord } from '../lib/store/store.js'
import { STATE_DIR } from '../lib/store/paths.js'
import { TUS, buildApp, createUpload, headUpload, patchUpload, uidOf } from './helpers.js'

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
  const { here, there } = await twoProcesses(t)
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

/** Two registrations on one directory, with the file locker: they know each other only through its files, as two processes do. */
async function twoProcesses (t: Test): Promise<{ dir: string, here: FastifyInstance, there: FastifyInstance }> {
  const dir = t.testdir()
  const [here, there] = [Fastify(), Fastify()]
  for (const app of [here, there]) {
    await app.register(tus, { uploadPath: dir, locker: 'file' })
    t.teardown(() => app.close())
  }
  return { dir, here, there }
}

t.test('a HEAD after this process appended looks at the data file only, while it is as this process left it', async (t) => {
  const { dir, here } = await twoProcesses(t)
  const { path } = await createUpload(here, { 'upload-length': '4' })
  t.equal((await patchUpload(here, path, 0, 'ab')).statusCode, 204)
  // the record taken away behind the plugin's back: only a HEAD that does not look for it still finds the upload
  const record = join(dir, STATE_DIR, `${uidOf(path)}.json`)
  const text = await readFile(record, 'utf8')
  await unlink(record)
  const head = await headUpload(here, path)
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '2')
  t.equal(head.headers['upload-length'], '4')
  await writeFile(join(dir, STATE_DIR, `${uidOf(path)}.part`), 'abc')
  t.equal((await headUpload(here, path)).statusCode, 404, 'data of another size: the record is looked for, and is not there')
  await writeFile(record, text)
  t.equal((await headUpload(here, path)).headers['upload-offset'], '3')
})

t.test('what another process did to an upload this process appended to is seen by the next HEAD', async (t) => {
  const { here, there } = await twoProcesses(t)
  const { path } = await createUpload(here, { 'upload-length': '6' })
  t.equal((await patchUpload(here, path, 0, 'ab')).statusCode, 204)
  t.equal((await patchUpload(there, path, 2, 'cd')).statusCode, 204)
  t.equal((await headUpload(here, path)).headers['upload-offset'], '4', 'bytes the other appended')
  t.equal((await patchUpload(here, path, 4, 'e')).statusCode, 204)
  const refused = await patchUpload(there, path, 5, 'f', { 'upload-checksum': `sha1 ${createHash('sha1').update('x').digest('base64')}` })
  t.equal(refused.statusCode, 460)
  t.equal((await headUpload(here, path)).headers['upload-offset'], '5', 'a body the other cut off again: the answer as it was')
  t.equal((await patchUpload(there, path, 5, 'f')).statusCode, 204)
  const done = await headUpload(here, path)
  t.equal(done.statusCode, 200)
  t.equal(done.headers['upload-offset'], '6', 'completed by the other: its data file is gone, the record is read')
  const next = await createUpload(here, { 'upload-length': '2' })
  t.equal((await patchUpload(here, next.path, 0, 'a')).statusCode, 204)
  t.equal((await there.inject({ method: 'DELETE', url: next.path, headers: TUS })).statusCode, 204)
  t.equal((await headUpload(here, next.path)).statusCode, 404, 'terminated by the other')
})

t.test('a deferred length declared by another process without a byte is seen, though this process appended last', async (t) => {
  const { here, there } = await twoProcesses(t)
  const { path } = await createUpload(here, { 'upload-defer-length': '1' })
  t.equal((await patchUpload(here, path, 0, 'a')).statusCode, 204)
  t.equal((await patchUpload(there, path, 1, '', { 'upload-length': '2' })).statusCode, 204)
  const seen = await headUpload(here, path)
  t.equal(seen.headers['upload-length'], '2')
  t.equal(seen.headers['upload-defer-length'], undefined)
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

t.test('a data size is noted only beside the record version appended to, and goes with it', async (t) => {
  const cache = new RecordCache(2)
  const appendedTo = record('a')
  cache.set('a', identity(1), appendedTo)
  t.equal(cache.known('a'), undefined, 'read, never appended to')
  cache.appendedTo('a', record('a'), 5)
  t.equal(cache.known('a'), undefined, 'an equal record is not the version cached')
  cache.appendedTo('a', appendedTo, 5)
  t.match(cache.known('a'), { record: { uid: 'a' }, dataSize: 5 })
  cache.set('b', identity(2), record('b'))
  t.ok(cache.known('a'), 'a is now the one used last')
  cache.set('c', identity(3), record('c'))
  t.notOk(cache.has('b'), 'b was used longest ago: gone')
  cache.forgetDataSize('a')
  t.equal(cache.known('a'), undefined, 'forgotten: its data changed behind the cache\'s back')
  cache.forgetDataSize('b')
  t.notOk(cache.has('b'), 'nothing to forget: nothing made')
  cache.appendedTo('a', appendedTo, 6)
  cache.set('a', identity(4), appendedTo)
  t.equal(cache.known('a'), undefined, 'read again: its size is not known')
})
