import { link, readFile, readdir, writeFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { getEventListeners } from 'node:events'
import t from 'tap'
import { OCTET, TUS, buildApp, createUpload, descriptorsUnder, encodeMetadata, headUpload, patchUpload, uidOf } from './helpers.js'

const UNKNOWN = '/uploads/AAAAAAAAAAAAAAAAAAAAA'

t.test('PATCH needs application/offset+octet-stream (415) and a valid Upload-Offset (400)', async (t) => {
  const { app } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '5' })
  for (const type of ['text/plain', 'application/octet-stream', 'application/offset+octet-streamx']) {
    const response = await patchUpload(app, path, 0, 'abc', { 'content-type': type })
    t.equal(response.statusCode, 415, type)
    t.equal(response.json().code, 'FST_TUS_UNSUPPORTED_MEDIA_TYPE')
  }
  t.equal((await patchUpload(app, path, 0, 'a', { 'content-type': 'Application/Offset+Octet-Stream; x=1' })).statusCode, 204, 'case and parameters do not matter')
  const missing = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET }, payload: 'a' })
  t.equal(missing.statusCode, 400)
  t.equal(missing.json().message, 'Invalid Upload-Offset header: missing')
  for (const offset of ['-1', '1.0', 'x', '0x1', '']) {
    const response = await patchUpload(app, path, 0, 'a', { 'upload-offset': offset })
    t.equal(response.statusCode, 400, JSON.stringify(offset))
    t.equal(response.json().code, 'FST_TUS_INVALID_HEADER')
  }
  const unsafe = await patchUpload(app, path, 0, 'a', { 'upload-offset': '9999999999999999' })
  t.equal(unsafe.statusCode, 400)
  t.match(unsafe.json().message, /at most 2\^53-1, got "9999999999999999"/)
})

t.test('an offset that is not the current one is 409 with the current offset; nothing is written', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '10' })
  await patchUpload(app, path, 0, 'abc')
  for (const offset of [0, 2, 4, 10]) {
    const response = await patchUpload(app, path, offset, 'zzz')
    t.equal(response.statusCode, 409, `offset ${offset}`)
    t.equal(response.headers['upload-offset'], '3')
    t.equal(response.json().code, 'FST_TUS_OFFSET_MISMATCH')
  }
  t.equal(await readFile(join(dir, '.metadata', `${uidOf(path)}.part`), 'utf8'), 'abc')
})

t.test('unknown uploads are 404; an id not shaped like ours is 404 before any file-system call', async (t) => {
  const { app } = await buildApp(t)
  for (const method of ['HEAD', 'PATCH', 'DELETE'] as const) {
    for (const url of [UNKNOWN, '/uploads/short', '/uploads/AAAAAAAAAAAAAAAAAAAA.A']) {
      const response = await app.inject({ method, url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: method === 'PATCH' ? 'x' : undefined })
      t.equal(response.statusCode, 404, `${method} ${url}`)
    }
  }
})

t.test('the data file a PATCH opens beside the load is closed however the PATCH ends, and never made for an upload that is not there', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '6', 'upload-metadata': encodeMetadata({ filename: 'o.txt' }) })
  t.equal((await patchUpload(app, path, 0, 'ab')).statusCode, 204, 'the first body makes the data file')
  t.equal((await patchUpload(app, path, 1, 'c')).statusCode, 409)
  t.equal((await patchUpload(app, path, 2, 'cdefg')).statusCode, 413)
  const wrongDigest = createHash('sha1').update('z').digest('base64')
  t.equal((await patchUpload(app, path, 2, 'c', { 'upload-checksum': `sha1 ${wrongDigest}` })).statusCode, 460)
  t.same(await descriptorsUnder(dir), [], 'none open after the refusals')
  t.equal((await patchUpload(app, UNKNOWN, 0, 'x')).statusCode, 404)
  t.same((await readdir(join(dir, '.metadata'))).filter((name) => name.startsWith(uidOf(UNKNOWN))), [], 'no file for the unknown upload')
  t.equal((await patchUpload(app, path, 2, 'cdef')).statusCode, 204)
  t.equal((await patchUpload(app, path, 6, 'g')).statusCode, 413, 'a completed upload')
  t.same(await descriptorsUnder(dir), [])
  t.equal(await readFile(join(dir, 'o.txt'), 'utf8'), 'abcdef')
})

t.test('a body that would pass Upload-Length is 413 before a byte is written', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '5' })
  await patchUpload(app, path, 0, 'ab')
  const response = await patchUpload(app, path, 2, 'cdef')
  t.equal(response.statusCode, 413)
  t.match(response.json().message, /pass Upload-Length 5/)
  t.equal(await readFile(join(dir, '.metadata', `${uidOf(path)}.part`), 'utf8'), 'ab')
})

t.test('a deferred length is set once by a PATCH', async (t) => {
  const { app, dir } = await buildApp(t, { maxSize: 20 })
  const { path } = await createUpload(app, { 'upload-defer-length': '1', 'upload-metadata': encodeMetadata({ filename: 'late.txt' }) })
  t.equal((await patchUpload(app, path, 0, 'abcd')).statusCode, 204, 'bytes before the length is known')
  const below = await patchUpload(app, path, 4, 'e', { 'upload-length': '3' })
  t.equal(below.statusCode, 400)
  t.equal(below.json().code, 'FST_TUS_LENGTH_BELOW_OFFSET')
  const above = await patchUpload(app, path, 4, 'e', { 'upload-length': '21' })
  t.equal(above.statusCode, 413)
  t.match(above.json().message, /Upload-Length 21 passes the maximum size of 20/)
  const set = await patchUpload(app, path, 4, 'ef', { 'upload-length': '8' })
  t.equal(set.statusCode, 204)
  const head = await headUpload(app, path)
  t.equal(head.headers['upload-length'], '8')
  t.notOk('upload-defer-length' in head.headers)
  const changed = await patchUpload(app, path, 6, 'g', { 'upload-length': '9' })
  t.equal(changed.statusCode, 400)
  t.equal(changed.json().code, 'FST_TUS_LENGTH_ALREADY_SET')
  t.equal((await patchUpload(app, path, 6, 'gh', { 'upload-length': '8' })).statusCode, 204, 'the same length again is fine')
  t.equal(await readFile(join(dir, 'late.txt'), 'utf8'), 'abcdefgh')
})

t.test('a deferred upload cannot grow past maxSize', async (t) => {
  const { app } = await buildApp(t, { maxSize: 4 })
  const { path } = await createUpload(app, { 'upload-defer-length': '1' })
  const response = await patchUpload(app, path, 0, 'abcde')
  t.equal(response.statusCode, 413)
  t.match(response.json().message, /would pass the maximum size of 4 bytes/)
  const open = await buildApp(t)
  const unlimited = await createUpload(open.app, { 'upload-defer-length': '1' })
  t.equal((await patchUpload(open.app, unlimited.path, 0, 'abcde')).statusCode, 204, 'no maxSize, no limit')
})

t.test('a completed upload answers PATCH by its offset and takes no more bytes', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'c.txt' }) })
  await patchUpload(app, path, 0, 'abc')
  const empty = await patchUpload(app, path, 3, '')
  t.equal(empty.statusCode, 204)
  t.equal(empty.headers['upload-offset'], '3')
  t.equal((await patchUpload(app, path, 3, 'd')).statusCode, 413)
  const chunked = new PassThrough()
  const answer = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '3', 'transfer-encoding': 'chunked' }, payload: chunked })
  chunked.end('d')
  t.equal((await answer).statusCode, 413, 'a chunked body too')
  t.equal((await patchUpload(app, path, 0, 'abc')).statusCode, 409)
  t.equal(await readFile(join(dir, 'c.txt'), 'utf8'), 'abc')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`], 'no data file comes back')
})

t.test('a body longer than announced is cut at Upload-Length: the bytes up to it are kept, 413', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '4', 'upload-metadata': encodeMetadata({ filename: 'cut.txt' }) })
  const body = new PassThrough()
  const response = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  body.end('abcdefgh')
  const answered = await response
  t.equal(answered.statusCode, 413)
  t.equal(answered.headers['upload-offset'], '4')
  t.equal(await readFile(join(dir, 'cut.txt'), 'utf8'), 'abcd')
})

t.test('a new request for an upload ends the running one at once, its bytes kept', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '10' })
  const stalled = new PassThrough()
  const first = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: stalled })
  stalled.write('abc')
  const part = join(dir, '.metadata', `${uidOf(path)}.part`)
  await waitFor(async () => (await readFile(part, 'utf8').catch(() => '')) === 'abc')
  const started = Date.now()
  const second = await patchUpload(app, path, 0, 'x')
  t.equal(second.statusCode, 409, 'the newer request sees the bytes of the ended one')
  t.equal(second.headers['upload-offset'], '3')
  t.ok(Date.now() - started < 1000, 'no waiting for the stalled request')
  const ended = await first
  t.equal(ended.statusCode, 409)
  t.equal(ended.json().code, 'FST_TUS_INTERRUPTED')
  t.equal(ended.headers['upload-offset'], '3')
  t.equal((await patchUpload(app, path, 3, 'defghij')).statusCode, 204)
  t.equal(await readFile(join(dir, uidOf(path)), 'utf8'), 'abcdefghij')
})

t.test('a PATCH leaves nothing behind on a signal that outlives it', async (t) => {
  // The registration's closing signal lives as long as the server and every body listens to it;
  // it is not reachable from here, but a locker's signal is: this one hands out one for good.
  const forever = new AbortController().signal
  const lock = { signal: forever, release () {} }
  const { app } = await buildApp(t, { locker: { acquire: async () => lock, tryAcquire: async () => lock } })
  // what AbortSignal.any leaves on each of its sources, never taken back: this check sees it
  const probe = new AbortController().signal
  AbortSignal.any([probe])
  t.equal(dependantsOf(probe), 1, 'the check sees what AbortSignal.any leaves')
  const { path } = await createUpload(app, { 'upload-length': '30' })
  for (let offset = 0; offset < 30; offset += 10) t.equal((await patchUpload(app, path, offset, Buffer.alloc(10))).statusCode, 204)
  t.equal(dependantsOf(forever), 0, 'no reference per request')
  t.equal(getEventListeners(forever, 'abort').length, 0, 'no listener left')
})

t.test('many bodies streaming at once raise no listener warning', async (t) => {
  const { app } = await buildApp(t)
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const bodies = await Promise.all(Array.from({ length: 12 }, async () => {
    const { path } = await createUpload(app, { 'upload-length': '2' })
    const body = new PassThrough()
    const response = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
    body.write('a')
    return { body, response }
  }))
  await new Promise((resolve) => setTimeout(resolve, 100))
  for (const { body } of bodies) body.end('b')
  for (const { response } of bodies) t.equal((await response).statusCode, 204)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(warnings.map((warning) => warning.name), [])
})

t.test('an upload whose bytes all arrived but that a crash kept from completing is completed by HEAD or PATCH', async (t) => {
  const done: string[] = []
  const { app, dir } = await buildApp(t, { onUploadDone: (_request, resource) => { done.push(resource.fileName) } })
  const viaHead = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'head.txt' }) })
  await writeFile(join(dir, '.metadata', `${uidOf(viaHead.path)}.part`), 'abc')
  const head = await headUpload(app, viaHead.path)
  t.equal(head.headers['upload-offset'], '3')
  t.equal(await readFile(join(dir, 'head.txt'), 'utf8'), 'abc')

  const viaPatch = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'patch.txt' }) })
  const part = join(dir, '.metadata', `${uidOf(viaPatch.path)}.part`)
  await writeFile(part, 'xyz')
  await link(part, join(dir, 'patch.txt')) // the crash came after the final link
  t.equal((await patchUpload(app, viaPatch.path, 3, '')).statusCode, 204)
  t.equal(await readFile(join(dir, 'patch.txt'), 'utf8'), 'xyz')
  t.same(done, ['head.txt', 'patch.txt'])
})

t.test('X-HTTP-Method-Override on a POST to an upload is served as that method', async (t) => {
  const { app } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '6' })
  const override = (method: string, headers: Record<string, string> = {}, payload?: string) => app.inject({
    method: 'POST', url: path, headers: { ...TUS, 'x-http-method-override': method, ...headers }, ...(payload === undefined ? {} : { payload })
  })
  const patched = await override('PATCH', { 'content-type': OCTET, 'upload-offset': '0' }, 'abc')
  t.equal(patched.statusCode, 204)
  t.equal(patched.headers['upload-offset'], '3')
  const head = await override('HEAD')
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '3')
  t.equal((await override('PATCH', { 'upload-offset': '3' }, 'd')).statusCode, 415, 'the target method\'s rules apply')
  t.equal((await override('GET')).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: path, headers: TUS })).statusCode, 400, 'a POST without override')
  t.equal((await app.inject({ method: 'POST', url: path, headers: { 'x-http-method-override': 'HEAD' } })).statusCode, 412)
  t.equal((await override('DELETE')).statusCode, 204)
  t.equal((await headUpload(app, path)).statusCode, 404)
})

async function waitFor (condition: () => Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** How many composite signals (AbortSignal.any) hold on to `signal`, by the set Node keeps on it for them. */
function dependantsOf (signal: AbortSignal): number {
  const key = Object.getOwnPropertySymbols(signal).find((symbol) => symbol.description === 'kDependantSignals')
  return key === undefined ? 0 : ((signal as unknown as Record<symbol, Set<unknown>>)[key] as Set<unknown>).size
}
