import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { CompletedResource } from '../lib/index.js'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

type App = Awaited<ReturnType<typeof buildApp>>['app']

/** A partial upload of `data`, sent whole unless `sent` says how much. */
async function partial (app: App, data: string, sent = data.length): Promise<string> {
  const { response, path } = await createUpload(app, { 'upload-length': String(data.length), 'upload-concat': 'partial' })
  if (response.statusCode !== 201) throw new Error(`partial: ${response.statusCode} ${response.body}`)
  if (sent > 0) await patchUpload(app, path, 0, data.slice(0, sent))
  return path
}

function final (app: App, urls: string[], headers: Record<string, string> = {}): ReturnType<typeof createUpload> {
  return createUpload(app, { 'upload-concat': `final;${urls.join(' ')}`, ...headers })
}

function recorder (): { calls: CompletedResource[], onUploadDone: (request: unknown, resource: CompletedResource) => void } {
  const calls: CompletedResource[] = []
  return { calls, onUploadDone: (_request, resource) => { calls.push(resource) } }
}

t.test('a partial upload says so on HEAD and never becomes a file of its own', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '5', 'upload-concat': 'partial', 'upload-metadata': encodeMetadata({ filename: 'p.txt' }) })
  await patchUpload(app, path, 0, 'hello')
  const head = await headUpload(app, path)
  t.equal(head.headers['upload-concat'], 'partial')
  t.equal(head.headers['upload-offset'], '5')
  t.same((await readdir(dir)).sort(), ['.metadata'], 'no completed file')
  t.same((await readdir(join(dir, '.metadata'))).sort(), [`${uidOf(path)}.json`, `${uidOf(path)}.part`])
  t.same(await app.tusCleanup(), { expired: 0, leftovers: 0, failed: 0 }, 'its data is no leftover')
})

t.test('a final upload of complete partials is assembled at once, in order, and the partials go', async (t) => {
  const done = recorder()
  const { app, dir } = await buildApp(t, { onUploadDone: done.onUploadDone })
  const a = await partial(app, 'hello')
  const b = await partial(app, ' world')
  const absolute = `http://localhost${b}`
  const { response, path } = await final(app, [a, absolute, a], { 'upload-metadata': encodeMetadata({ filename: 'hw.txt' }) })
  t.equal(response.statusCode, 201)
  t.equal(await readFile(join(dir, 'hw.txt'), 'utf8'), 'hello worldhello', 'relative and absolute URLs, a partial used twice')
  const head = await headUpload(app, path)
  t.equal(head.headers['upload-offset'], '16')
  t.equal(head.headers['upload-length'], '16')
  t.equal(head.headers['upload-concat'], `final;${a} ${absolute} ${a}`, 'as received')
  t.match(done.calls, [{ uid: uidOf(path), fileName: 'hw.txt', offset: 16, fileSize: 16 }])
  t.equal(done.calls.length, 1, 'the partials completing did not call it')
  t.equal((await headUpload(app, a)).statusCode, 404, 'partials are removed')
  t.equal((await headUpload(app, b)).statusCode, 404)
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`])
  t.equal((await patchUpload(app, path, 16, 'x')).statusCode, 403, 'a final upload is never patched')
})

t.test('a final upload must name complete partial uploads of this endpoint', async (t) => {
  const { app } = await buildApp(t, { maxSize: 10, uploadUrl: '/u/:team', uploadPath: `${t.testdir()}/{team}`, disabledExtensions: ['concatenation-unfinished'] })
  const create = (headers: Record<string, string>, url = '/u/red', body?: string): ReturnType<typeof createUpload> => createUpload(app, headers, url, body)
  const complete = (await create({ 'upload-length': '4', 'upload-concat': 'partial', 'content-type': OCTET }, '/u/red', 'abcd')).path
  const other = (await create({ 'upload-length': '4', 'upload-concat': 'partial', 'content-type': OCTET }, '/u/blue', 'abcd')).path
  const unfinished = (await create({ 'upload-length': '4', 'upload-concat': 'partial' })).path
  const plain = (await create({ 'upload-length': '4' })).path
  const deferred = (await create({ 'upload-defer-length': '1', 'upload-concat': 'partial' })).path
  const cases: Array<[Record<string, string>, number, RegExp]> = [
    [{ 'upload-concat': `final;${complete}`, 'upload-length': '4' }, 400, /takes its length from its partial uploads/],
    [{ 'upload-concat': `final;${complete}`, 'upload-defer-length': '1' }, 400, /takes its length/],
    [{ 'upload-concat': `final;${other}` }, 400, /is not an upload of this endpoint/],
    [{ 'upload-concat': 'final;/u/red/short' }, 400, /is not an upload of this endpoint/],
    [{ 'upload-concat': `final;/elsewhere/${uidOf(complete)}` }, 400, /is not an upload of this endpoint/],
    [{ 'upload-concat': 'final;/u/red/AAAAAAAAAAAAAAAAAAAAA' }, 400, /does not exist/],
    [{ 'upload-concat': `final;${plain}` }, 400, /is not a partial upload/],
    [{ 'upload-concat': `final;${deferred}` }, 400, /has no length yet/],
    [{ 'upload-concat': `final;${unfinished}` }, 400, /is not complete/],
    [{ 'upload-concat': `final;${complete} ${complete} ${complete}` }, 413, /maximum size of 10/],
    [{ 'upload-concat': 'final;' }, 400, /Upload-Concat/],
    [{ 'upload-concat': 'final;http://%' }, 400, /http:\/\/% is not an upload of this endpoint/],
    [{ 'upload-concat': 'final;http://[' }, 400, /is not an upload of this endpoint/],
    [{ 'upload-concat': 'partial;x' }, 400, /Upload-Concat/]
  ]
  for (const [headers, status, message] of cases) {
    const { response } = await create(headers)
    t.equal(response.statusCode, status, headers['upload-concat'] as string)
    t.match(response.json().message, message)
  }
  const withBody = await create({ 'upload-concat': `final;${complete}`, 'content-type': OCTET }, '/u/red', 'x')
  t.equal(withBody.response.statusCode, 400)
  t.match(withBody.response.json().message, /cannot carry data/)
  t.equal((await create({ 'upload-concat': `final;${complete} ${complete}` })).response.statusCode, 201)
})

t.test('concatenation-unfinished: a final waits for its partials and completes with the last one', async (t) => {
  const done = recorder()
  const { app, dir } = await buildApp(t, { onUploadDone: done.onUploadDone })
  const a = await partial(app, 'abc', 1)
  const b = await partial(app, 'def', 0)
  const { response, path } = await final(app, [a, b], { 'upload-metadata': encodeMetadata({ filename: 'later.txt' }) })
  t.equal(response.statusCode, 201)
  const pending = await headUpload(app, path)
  t.notOk('upload-offset' in pending.headers, 'no offset before it is assembled')
  t.equal(pending.headers['upload-length'], '6')
  t.equal(pending.headers['upload-concat'], `final;${a} ${b}`)
  t.equal((await patchUpload(app, b, 0, 'def')).statusCode, 204)
  t.equal(done.calls.length, 0)
  const last = await patchUpload(app, a, 1, 'bc')
  t.equal(last.statusCode, 204)
  t.equal(await readFile(join(dir, 'later.txt'), 'utf8'), 'abcdef', 'assembled by the request that completed the last partial')
  t.match(done.calls, [{ uid: uidOf(path), fileSize: 6 }])
  t.equal((await headUpload(app, path)).headers['upload-offset'], '6')
  t.equal((await headUpload(app, a)).statusCode, 404)
})

t.test('a partial waited for by two finals stays until both are assembled', async (t) => {
  const { app, dir } = await buildApp(t)
  const shared = await partial(app, 'ab', 0)
  const first = await final(app, [shared], { 'upload-metadata': encodeMetadata({ filename: 'one.txt' }) })
  const second = await final(app, [shared, shared], { 'upload-metadata': encodeMetadata({ filename: 'two.txt' }) })
  await patchUpload(app, shared, 0, 'ab')
  t.equal(await readFile(join(dir, 'one.txt'), 'utf8'), 'ab')
  t.equal(await readFile(join(dir, 'two.txt'), 'utf8'), 'abab')
  t.equal((await headUpload(app, shared)).statusCode, 404)
  t.equal((await headUpload(app, first.path)).headers['upload-offset'], '2')
  t.equal((await headUpload(app, second.path)).headers['upload-offset'], '4')
})

t.test('a crash between a partial\'s completion and its final\'s assembly is repaired by HEAD', async (t) => {
  const { app, dir } = await buildApp(t)
  const a = await partial(app, 'xy', 0)
  const { path } = await final(app, [a], { 'upload-metadata': encodeMetadata({ filename: 'healed.txt' }) })
  await writeFile(join(dir, '.metadata', `${uidOf(a)}.part`), 'xy') // the last bytes arrived, then the crash
  t.equal((await headUpload(app, a)).headers['upload-offset'], '2', 'HEAD of the partial completes it, and its final')
  t.equal(await readFile(join(dir, 'healed.txt'), 'utf8'), 'xy')

  t.equal((await headUpload(app, path)).headers['upload-offset'], '2')

  const b = await partial(app, 'zz', 0)
  const second = await final(app, [b], { 'upload-metadata': encodeMetadata({ filename: 'healed-too.txt' }) })
  const partialRecord = join(dir, '.metadata', `${uidOf(b)}.json`)
  await writeFile(partialRecord, JSON.stringify({ ...JSON.parse(await readFile(partialRecord, 'utf8')), completed: true }))
  await writeFile(join(dir, '.metadata', `${uidOf(b)}.part`), 'zz') // the partial completed, then the crash
  const head = await headUpload(app, second.path)
  t.equal(head.headers['upload-offset'], '2', 'HEAD of the final assembles it')
  t.equal(await readFile(join(dir, 'healed-too.txt'), 'utf8'), 'zz')
})

t.test('a final whose partial is gone can never complete: 410, and cleanup removes it', async (t) => {
  const { app } = await buildApp(t)
  const a = await partial(app, 'ab', 0)
  const { path } = await final(app, [a])
  t.equal((await app.inject({ method: 'DELETE', url: a, headers: TUS })).statusCode, 204)
  const head = await headUpload(app, path)
  t.equal(head.statusCode, 410)
  t.same(await app.tusCleanup(), { expired: 0, leftovers: 0, failed: 0 }, 'without expiration, cleanup does not look at uploads')
  const expiring = await buildApp(t, { expiration: 3_600_000 })
  const b = await partial(expiring.app, 'ab', 0)
  const broken = await final(expiring.app, [b])
  await expiring.app.inject({ method: 'DELETE', url: b, headers: TUS })
  const pending = await final(expiring.app, [await partial(expiring.app, 'cd', 0)])
  t.notOk('upload-expires' in (await headUpload(expiring.app, pending.path)).headers, 'a final upload does not expire by itself')
  t.same(await expiring.app.tusCleanup(), { expired: 1, leftovers: 0, failed: 0 })
  t.equal((await headUpload(expiring.app, broken.path)).statusCode, 404)
  t.equal((await headUpload(expiring.app, pending.path)).statusCode, 200)
})

t.test('a complete partial upload still expires: it is nothing until a final uses it', async (t) => {
  const { app, dir } = await buildApp(t, { expiration: 1000 })
  const a = await partial(app, 'ab')
  t.ok('upload-expires' in (await headUpload(app, a)).headers)
  const old = new Date(Date.now() - 5000)
  const { utimes } = await import('node:fs/promises')
  await utimes(join(dir, '.metadata', `${uidOf(a)}.part`), old, old)
  t.equal((await headUpload(app, a)).statusCode, 410)
})

t.test('concatenation can be turned off', async (t) => {
  const { app } = await buildApp(t, { disabledExtensions: ['concatenation'] })
  t.notMatch((await app.inject({ method: 'OPTIONS', url: '/uploads' })).headers['tus-extension'], /concatenation/)
  const { response } = await createUpload(app, { 'upload-length': '1', 'upload-concat': 'partial' })
  t.equal(response.statusCode, 400)
  t.match(response.json().message, /"concatenation" is turned off/)
})

t.test('a final terminated while it waits is forgotten: its partial completes as usual', async (t) => {
  const done = recorder()
  const { app } = await buildApp(t, { onUploadDone: done.onUploadDone })
  const a = await partial(app, 'ab', 0)
  const { path } = await final(app, [a])
  t.equal((await app.inject({ method: 'DELETE', url: path, headers: TUS })).statusCode, 204)
  t.equal((await patchUpload(app, a, 0, 'ab')).statusCode, 204)
  t.equal(done.calls.length, 0)
  t.equal((await headUpload(app, a)).headers['upload-offset'], '2')
})

t.test('a partial whose data is gone makes its final a 410', async (t) => {
  const { app, dir } = await buildApp(t)
  const a = await partial(app, 'ab')
  const { rm } = await import('node:fs/promises')
  await rm(join(dir, '.metadata', `${uidOf(a)}.part`))
  const { response } = await final(app, [a])
  t.equal(response.statusCode, 410)
  t.equal(response.json().code, 'FST_TUS_CONCAT_BROKEN')
})

t.test('an assembly taken over by a newer request for the final stops at once', async (t) => {
  const { app, dir } = await buildApp(t)
  const a = await partial(app, 'abcd')
  const fifo = join(dir, '.metadata', `${uidOf(a)}.part`)
  const { rm, open } = await import('node:fs/promises')
  const { execFileSync } = await import('node:child_process')
  const { constants } = await import('node:fs')
  await rm(fifo)
  execFileSync('mkfifo', [fifo]) // reading it waits for a writer: the assembly hangs in the copy
  const creating = final(app, [a])
  const finals = join(dir, '.metadata', `${uidOf(a)}.finals`)
  let finalUid = ''
  const deadline = Date.now() + 5000
  while (finalUid === '' && Date.now() < deadline) {
    finalUid = (await readFile(finals, 'utf8').catch(() => '')).trim()
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const removed = await app.inject({ method: 'DELETE', url: `/uploads/${finalUid}`, headers: TUS })
  t.equal(removed.statusCode, 204, 'the DELETE did not wait for the copy')
  t.equal((await creating).response.statusCode, 201)
  const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK) // lets the blocked read go
  await writer.close()
  t.equal((await headUpload(app, `/uploads/${finalUid}`)).statusCode, 404)
})
