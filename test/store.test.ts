import { mkdir, readFile, readdir, stat, symlink, unlink, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

const reservation = (dir: string, name: string) => join(dir, '.metadata', `${createHash('sha256').update(name).digest('hex')}.name`)

t.test('records go through jsonDumps and jsonLoads', async (t) => {
  const dumped: unknown[] = []
  const { app, dir } = await buildApp(t, {
    jsonDumps: (value) => { dumped.push(value); return `#${JSON.stringify(value)}` },
    jsonLoads: (text) => JSON.parse(text.slice(1))
  })
  const { path } = await createUpload(app, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'x.txt', kind: 'test' }) })
  t.match(await readFile(join(dir, '.metadata', `${uidOf(path)}.json`), 'utf8'), /^#\{"uid":/)
  t.equal((await headUpload(app, path)).headers['upload-length'], '2')
  await patchUpload(app, path, 0, 'hi')
  t.match(dumped, [
    { uid: uidOf(path), fileName: 'x.txt', fileSize: 2, metadata: { filename: 'x.txt', kind: 'test' }, completed: false },
    { completed: true }
  ])
  t.same((await readdir(join(dir, '.metadata'))).filter((name) => name.endsWith('.tmp')), [], 'no temporary file is left')
})

t.test('a record that cannot be read is a 500 that says so, not a 404', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '2' })
  await writeFile(join(dir, '.metadata', `${uidOf(path)}.json`), '{"uid": tr')
  const response = await patchUpload(app, path, 0, 'hi')
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_TUS_CORRUPT_METADATA')
  t.match(response.json().message, new RegExp(`upload ${uidOf(path)} cannot be read`))

  const empty = await createUpload(app, { 'upload-length': '2' })
  await writeFile(join(dir, '.metadata', `${uidOf(empty.path)}.json`), '')
  t.equal((await headUpload(app, empty.path)).statusCode, 500, 'an empty record')
})

t.test('file-system errors other than "not found" are not taken for a missing upload', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '2' })
  const part = join(dir, '.metadata', `${uidOf(path)}.part`)
  await symlink(part, part) // ELOOP on every stat
  t.equal((await headUpload(app, path)).statusCode, 500)
  const record = join(dir, '.metadata', 'AAAAAAAAAAAAAAAAAAAAA.json')
  await mkdir(record)
  t.equal((await headUpload(app, '/uploads/AAAAAAAAAAAAAAAAAAAAA')).statusCode, 500, 'EISDIR')

  const read = await createUpload(app, { 'upload-length': '2' })
  t.equal((await headUpload(app, read.path)).statusCode, 200, 'its record read once, and cached')
  const readRecord = join(dir, '.metadata', `${uidOf(read.path)}.json`)
  await unlink(readRecord)
  await symlink(readRecord, readRecord)
  t.equal((await headUpload(app, read.path)).statusCode, 500, 'a cached record whose file fails its stat')
})

t.test('a stale name reservation (its owner has no record) is taken over', async (t) => {
  const { app, dir } = await buildApp(t)
  await mkdir(join(dir, '.metadata'))
  await writeFile(reservation(dir, 'a.txt'), 'ZZZZZZZZZZZZZZZZZZZZZ')
  const { response, path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'a.txt' }) })
  t.equal(response.statusCode, 201)
  const [reserved, record] = await Promise.all([stat(reservation(dir, 'a.txt')), stat(join(dir, '.metadata', `${uidOf(path)}.json`))])
  t.equal(reserved.ino, record.ino, 'the reservation is a second name of the new upload\'s record')
  await patchUpload(app, path, 0, 'a')
  t.equal(await readFile(join(dir, 'a.txt'), 'utf8'), 'a')
  await t.rejects(readFile(reservation(dir, 'a.txt')), 'released at completion')
})

t.test('a reservation made by 0.1.0 (the bare uid) still holds the name for its live upload', async (t) => {
  const { app, dir } = await buildApp(t)
  const metadata = encodeMetadata({ filename: 'old.txt' })
  const { path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': metadata })
  await unlink(reservation(dir, 'old.txt'))
  await writeFile(reservation(dir, 'old.txt'), uidOf(path))
  const second = await createUpload(app, { 'upload-length': '1', 'upload-metadata': metadata })
  t.equal(second.response.statusCode, 409)
  t.equal(second.response.json().code, 'FST_TUS_FILE_EXISTS')
  await patchUpload(app, path, 0, 'o')
  t.equal(await readFile(join(dir, 'old.txt'), 'utf8'), 'o')
  await t.rejects(readFile(reservation(dir, 'old.txt')), 'released at completion')
})

t.test('a file placed under the final name behind the plugin\'s back is a 409 at completion, data kept', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'b.txt' }) })
  await writeFile(join(dir, 'b.txt'), 'someone else')
  const response = await patchUpload(app, path, 0, 'b')
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'FST_TUS_FILE_EXISTS')
  t.equal(await readFile(join(dir, 'b.txt'), 'utf8'), 'someone else', 'never overwritten')
  t.equal(await readFile(join(dir, '.metadata', `${uidOf(path)}.part`), 'utf8'), 'b', 'the bytes are kept')
  t.equal((await headUpload(app, path)).statusCode, 409, 'HEAD tries to complete it, and says why it cannot')
})

t.test('a file that exists before creation is a 409 at creation, and its reservation is let go', async (t) => {
  const { app, dir } = await buildApp(t)
  await writeFile(join(dir, 'c.txt'), 'here first')
  const { response } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'c.txt' }) })
  t.equal(response.statusCode, 409)
  t.same(await readdir(join(dir, '.metadata')), [])
})

t.test('with allowOverwriteFiles a leftover staging link from a crash is replaced', async (t) => {
  const { app, dir } = await buildApp(t, { allowOverwriteFiles: true })
  const { path } = await createUpload(app, { 'upload-length': '2', 'upload-metadata': encodeMetadata({ filename: 'd.txt' }) })
  await writeFile(join(dir, '.metadata', `${uidOf(path)}.final`), 'stale')
  await writeFile(join(dir, 'd.txt'), 'old')
  t.equal((await patchUpload(app, path, 0, 'ne')).statusCode, 204)
  t.equal(await readFile(join(dir, 'd.txt'), 'utf8'), 'ne')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`])
})
