import { mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import tus from '../lib/index.js'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

const HOUR = 3_600_000
const partOf = (dir: string, path: string): string => join(dir, '.metadata', `${uidOf(path)}.part`)
const recordOf = (dir: string, path: string): string => join(dir, '.metadata', `${uidOf(path)}.json`)
const expiresOf = (headers: Record<string, unknown>): number => Date.parse(headers['upload-expires'] as string)

/** Makes an upload look last written `ago` milliseconds ago. */
async function age (dir: string, path: string, ago: number): Promise<void> {
  const then = new Date(Date.now() - ago)
  const record = JSON.parse(await readFile(recordOf(dir, path), 'utf8'))
  await writeFile(recordOf(dir, path), JSON.stringify({ ...record, createdAt: then.toISOString() }))
  await utimes(partOf(dir, path), then, then).catch(() => {})
}

t.test('expiration is advertised only when set', async (t) => {
  const on = await buildApp(t, { expiration: HOUR })
  t.match((await on.app.inject({ method: 'OPTIONS', url: '/uploads' })).headers['tus-extension'], /,termination,expiration,checksum/)
  const off = await buildApp(t)
  t.notMatch((await off.app.inject({ method: 'OPTIONS', url: '/uploads' })).headers['tus-extension'], /expiration/)
  t.notOk('upload-expires' in (await createUpload(off.app, { 'upload-length': '5' })).response.headers)
})

t.test('Upload-Expires on POST, PATCH and HEAD counts from the last write of an unfinished upload', async (t) => {
  const { app, dir } = await buildApp(t, { expiration: HOUR })
  const before = Date.now()
  const { response, path } = await createUpload(app, { 'upload-length': '10' })
  t.match(response.headers['upload-expires'], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'an IMF-fixdate')
  t.ok(Math.abs(expiresOf(response.headers) - (before + HOUR)) < 2000)
  const patched = await patchUpload(app, path, 0, 'abc')
  t.ok(Math.abs(expiresOf(patched.headers) - (Date.now() + HOUR)) < 2000)
  await age(dir, path, HOUR / 2)
  const head = await headUpload(app, path)
  t.ok(Math.abs(expiresOf(head.headers) - (Date.now() + HOUR / 2)) < 2000, 'from the data file\'s last change, not from creation')
  const withBody = await createUpload(app, { 'upload-length': '10', 'content-type': OCTET }, '/uploads', 'abc')
  t.ok('upload-expires' in withBody.response.headers)
})

t.test('a completed upload never expires and says no Upload-Expires', async (t) => {
  const { app, dir } = await buildApp(t, { expiration: 1000 })
  const { path } = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'done.txt' }) })
  const last = await patchUpload(app, path, 0, 'abc')
  t.notOk('upload-expires' in last.headers)
  const empty = await createUpload(app, { 'upload-length': '0' })
  t.notOk('upload-expires' in empty.response.headers)
  await age(dir, path, HOUR)
  const head = await headUpload(app, path)
  t.equal(head.statusCode, 200)
  t.notOk('upload-expires' in head.headers)
  t.same(await app.tusCleanup(), { expired: 0, leftovers: 0, failed: 0 })
  t.equal(await readFile(join(dir, 'done.txt'), 'utf8'), 'abc')
})

t.test('an expired upload answers 410 until cleanup removes it; then 404', async (t) => {
  const { app, dir } = await buildApp(t, { expiration: HOUR })
  const written = await createUpload(app, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ filename: 'gone.txt' }) })
  await patchUpload(app, written.path, 0, 'abc')
  const untouched = await createUpload(app, { 'upload-length': '10' })
  const fresh = await createUpload(app, { 'upload-length': '10' })
  await age(dir, written.path, HOUR + 1000)
  await age(dir, untouched.path, HOUR + 1000)
  for (const path of [written.path, untouched.path]) {
    const head = await headUpload(app, path)
    t.equal(head.statusCode, 410)
    t.equal(head.headers['tus-resumable'], '1.0.0')
    const patch = await patchUpload(app, path, 3, 'd')
    t.equal(patch.statusCode, 410)
    t.equal(patch.json().code, 'FST_TUS_UPLOAD_EXPIRED')
  }
  t.same(await app.tusCleanup(), { expired: 2, leftovers: 0, failed: 0 })
  t.equal((await headUpload(app, written.path)).statusCode, 404)
  t.equal((await headUpload(app, fresh.path)).statusCode, 200, 'a fresh upload stays')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(fresh.path)}.json`])
  t.equal((await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'gone.txt' }) })).response.statusCode, 201, 'its name is free again')
})

t.test('cleanup never removes an upload being written', async (t) => {
  const { app, dir } = await buildApp(t, { expiration: HOUR })
  const { path } = await createUpload(app, { 'upload-length': '10' })
  const body = new PassThrough()
  const running = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  body.write('abc')
  const deadline = Date.now() + 5000
  while ((await readFile(partOf(dir, path), 'utf8').catch(() => '')) !== 'abc' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  await age(dir, path, HOUR + 1000)
  t.same(await app.tusCleanup(), { expired: 0, leftovers: 0, failed: 0 })
  body.end('defg')
  t.equal((await running).statusCode, 204, 'the PATCH went on')
  t.equal((await headUpload(app, path)).headers['upload-offset'], '7')
})

t.test('cleanup sweeps what interrupted writes left behind, and nothing else', async (t) => {
  const { app, dir } = await buildApp(t)
  const live = await createUpload(app, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ filename: 'live.txt' }) })
  await patchUpload(app, live.path, 0, 'abc')
  const done = await createUpload(app, { 'upload-length': '2' })
  await patchUpload(app, done.path, 0, 'ok')
  const state = join(dir, '.metadata')
  const old = new Date(Date.now() - HOUR)
  const files: Record<string, string> = {
    'ZZZZZZZZZZZZZZZZZZZZZ.part': 'orphan data',
    'ZZZZZZZZZZZZZZZZZZZZZ.final': 'orphan staging',
    [`${uidOf(done.path)}.part`]: 'data a crash left after completion',
    'old.json.abcdefgh.tmp': 'dead write',
    [`${'a'.repeat(64)}.name`]: 'ZZZZZZZZZZZZZZZZZZZZZ',
    'young.json.abcdefgh.tmp': 'a write going on'
  }
  for (const [name, content] of Object.entries(files)) await writeFile(join(state, name), content)
  await utimes(join(state, 'old.json.abcdefgh.tmp'), old, old)
  for (const lock of [`${uidOf(live.path)}.lock`, `${uidOf(live.path)}.lock.stale-abc`, 'ZZZZZZZZZZZZZZZZZZZZZ.lock']) await mkdir(join(state, lock, 'x'), { recursive: true })
  t.same(await app.tusCleanup(), { expired: 0, leftovers: 7, failed: 0 })
  t.same((await readdir(state)).sort(), [
    `${uidOf(done.path)}.json`,
    `${uidOf(live.path)}.json`,
    `${uidOf(live.path)}.lock`,
    `${uidOf(live.path)}.part`,
    (await readdir(state)).find((name) => name.endsWith('.name') && !name.startsWith('aaaa')),
    'young.json.abcdefgh.tmp'
  ].sort(), 'the live upload, its lock, its reservation and a young temporary file stay')
})

t.test('cleanup walks every directory the placeholders can name, and every registration', async (t) => {
  const root = t.testdir()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tus, { uploadPath: join(root, 'users', '{user}', 'files'), uploadUrl: '/u/:user', expiration: HOUR })
  await app.register(tus, { uploadPath: join(root, 'plain'), uploadUrl: '/plain', expiration: HOUR })
  await mkdir(join(root, 'users', 'nobody'), { recursive: true })
  await writeFile(join(root, 'users', 'not-a-dir'), '')
  const paths = [
    ['/u/ann', join(root, 'users', 'ann', 'files')],
    ['/u/bob', join(root, 'users', 'bob', 'files')],
    ['/plain', join(root, 'plain')]
  ] as const
  for (const [url, dir] of paths) {
    const { path } = await createUpload(app, { 'upload-length': '5' }, url)
    await age(dir, path, HOUR + 1000)
  }
  t.same(await app.tusCleanup(), { expired: 3, leftovers: 0, failed: 0 })
})

t.test('a record that cannot be read is counted and logged, and the rest is cleaned', async (t) => {
  const logs: string[] = []
  const { app, dir } = await buildApp(t, { expiration: HOUR }, {
    logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } }
  })
  const broken = await createUpload(app, { 'upload-length': '5' })
  const expired = await createUpload(app, { 'upload-length': '5' })
  await age(dir, expired.path, HOUR + 1000)
  await writeFile(recordOf(dir, broken.path), '{')
  t.same(await app.tusCleanup(), { expired: 1, leftovers: 0, failed: 1 })
  t.match(logs.join(''), /cleanup could not look at an upload/)
})

t.test('cleanupInterval runs the cleanup by itself, and stops with the app', async (t) => {
  const dir = t.testdir()
  const app = Fastify()
  await app.register(tus, { uploadPath: dir, expiration: HOUR, cleanupInterval: 10 })
  const { path } = await createUpload(app, { 'upload-length': '5' })
  await age(dir, path, HOUR + 1000)
  const deadline = Date.now() + 5000
  while ((await headUpload(app, path)).statusCode !== 404) {
    if (Date.now() > deadline) throw new Error('the scheduled cleanup never ran')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  await app.close()
  t.pass('closed')
})

t.test('a cleanup that fails is logged; the schedule goes on', async (t) => {
  const dir = t.testdir()
  const logs: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logs.push(line) } } } })
  await app.register(tus, { uploadPath: dir, cleanupInterval: 5 })
  await writeFile(join(dir, '.metadata'), 'not a directory')
  await t.rejects(app.tusCleanup(), { code: 'ENOTDIR' })
  const deadline = Date.now() + 5000
  while (logs.filter((line) => line.includes('cleanup failed')).length < 2) {
    if (Date.now() > deadline) throw new Error('the schedule stopped')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await app.close()
  t.match(logs[0], /ENOTDIR/)
})
