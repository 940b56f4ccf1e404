// The cases of aiohttp-tus's own test suite, ported to fastify-tus, plus the
// cases that show its known defects (ANCHORS.md) are not copied.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import Fastify, {
  type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type LightMyRequestResponse
} from 'fastify'
import t, { type Test } from 'tap'
import tus, { type CompletedResource } from '../lib/index.js'
import {
  OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, seededBytes, tree, uidOf, uploadWhole
} from './helpers.js'

/** A bare Fastify app, closed when the test ends. */
function newApp (t: Test, server: FastifyServerOptions = {}): FastifyInstance {
  const app = Fastify(server)
  t.teardown(() => app.close())
  return app
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false)

const named = (fileName: string, length: number): Record<string, string> =>
  ({ 'upload-length': String(length), 'upload-metadata': encodeMetadata({ filename: fileName }) })

/** Sends `data` from `from` in PATCHes of `chunkSize` bytes; one assertion for the whole run. */
async function sendChunks (t: Test, app: FastifyInstance, path: string, data: Buffer, chunkSize: number, from = 0): Promise<void> {
  let requests = 0
  for (let offset = from; offset < data.length; offset += chunkSize) {
    const chunk = data.subarray(offset, offset + chunkSize)
    const response = await patchUpload(app, path, offset, chunk)
    requests++
    if (response.statusCode !== 204 || response.headers['upload-offset'] !== String(offset + chunk.length)) {
      t.fail(`PATCH at ${offset} of ${chunk.length} bytes`, { status: response.statusCode, offset: response.headers['upload-offset'], body: response.body })
      return
    }
  }
  t.pass(`${requests} PATCHes of up to ${chunkSize} bytes each answered 204 with the right Upload-Offset`)
}

/** The entries of an upload directory's `.metadata`, sorted. */
const stateFiles = async (dir: string): Promise<string[]> => (await readdir(join(dir, '.metadata'))).sort()

t.test('multiple endpoints in one app', async (t) => {
  const root = t.testdir()
  const app = newApp(t)
  const done: Array<[string, string]> = []
  await app.register(tus, {
    uploadPath: join(root, 'public'),
    onUploadDone: (_request, resource) => { done.push(['public', resource.fileName]) }
  })
  await app.register(tus, {
    uploadPath: join(root, 'private'),
    uploadUrl: '/files',
    onUploadDone: (_request, resource) => { done.push(['private', resource.fileName]) }
  })

  t.test('uploads land each in its own directory, interleaved, same file name', async (t) => {
    const one = Buffer.from('public content')
    const two = Buffer.from('private content, longer')
    const a = await createUpload(app, named('same.txt', one.length), '/uploads')
    const b = await createUpload(app, named('same.txt', two.length), '/files')
    t.equal(a.response.statusCode, 201)
    t.equal(b.response.statusCode, 201)
    t.match(a.path, /^\/uploads\/[A-Za-z0-9_-]{21}$/)
    t.match(b.path, /^\/files\/[A-Za-z0-9_-]{21}$/)
    t.equal((await patchUpload(app, a.path, 0, one.subarray(0, 5))).statusCode, 204)
    t.equal((await patchUpload(app, b.path, 0, two.subarray(0, 9))).statusCode, 204)
    t.equal((await patchUpload(app, a.path, 5, one.subarray(5))).statusCode, 204)
    t.equal((await patchUpload(app, b.path, 9, two.subarray(9))).statusCode, 204)
    t.equal(await readFile(join(root, 'public', 'same.txt'), 'utf8'), one.toString())
    t.equal(await readFile(join(root, 'private', 'same.txt'), 'utf8'), two.toString())
    t.same(done, [['public', 'same.txt'], ['private', 'same.txt']], 'each registration calls its own onUploadDone')
    t.same(await stateFiles(join(root, 'public')), [`${uidOf(a.path)}.json`])
    t.same(await stateFiles(join(root, 'private')), [`${uidOf(b.path)}.json`])
  })

  t.test('an upload of one endpoint is unknown to the other', async (t) => {
    const { response, path } = await createUpload(app, named('only-public.bin', 4), '/uploads')
    t.equal(response.statusCode, 201)
    const elsewhere = `/files/${uidOf(path)}`
    t.equal((await headUpload(app, elsewhere)).statusCode, 404)
    t.equal((await patchUpload(app, elsewhere, 0, 'abcd')).statusCode, 404)
    t.equal((await app.inject({ method: 'DELETE', url: elsewhere, headers: TUS })).statusCode, 404)
    t.notOk(await exists(join(root, 'private', '.metadata', `${uidOf(path)}.part`)), 'nothing written in the other directory')
    t.equal((await headUpload(app, path)).headers['upload-offset'], '0', 'the upload is intact')
    t.notOk(await exists(join(root, 'private', 'only-public.bin')))
  })

  t.test('OPTIONS on both endpoints', async (t) => {
    for (const url of ['/uploads', '/files', '/files/']) {
      t.equal((await app.inject({ method: 'OPTIONS', url })).statusCode, 204, url)
    }
  })
})

t.test('nested endpoints: /uploads and /uploads/private do not shadow each other', async (t) => {
  const root = t.testdir()
  const app = newApp(t)
  await app.register(tus, { uploadPath: join(root, 'outer') })
  await app.register(tus, { uploadPath: join(root, 'inner'), uploadUrl: '/uploads/private' })
  const inner = await createUpload(app, named('n.txt', 5), '/uploads/private')
  t.equal(inner.response.statusCode, 201)
  t.match(inner.path, /^\/uploads\/private\/[A-Za-z0-9_-]{21}$/)
  const outer = await createUpload(app, named('n.txt', 5), '/uploads')
  t.equal(outer.response.statusCode, 201)
  t.equal((await patchUpload(app, inner.path, 0, 'inner')).statusCode, 204)
  t.equal((await patchUpload(app, outer.path, 0, 'outer')).statusCode, 204)
  t.equal(await readFile(join(root, 'inner', 'n.txt'), 'utf8'), 'inner')
  t.equal(await readFile(join(root, 'outer', 'n.txt'), 'utf8'), 'outer')
})

t.test('/uploads and /uploads/ both create', async (t) => {
  const check = async (t: Test, app: FastifyInstance, base: string, dir: string): Promise<void> => {
    const seen = new Set<string>()
    for (const url of [base, `${base}/`]) {
      const { response, path } = await createUpload(app, named(`at ${url.replaceAll('/', '_')}.txt`, 2), url)
      t.equal(response.statusCode, 201, `POST ${url}`)
      t.match(path, new RegExp(`^${base}/[A-Za-z0-9_-]{21}$`), `POST ${url}: Location has a single slash before the uid`)
      t.equal((await patchUpload(app, path, 0, 'ok')).statusCode, 204)
      seen.add(uidOf(path))
      t.equal((await app.inject({ method: 'OPTIONS', url })).statusCode, 204, `OPTIONS ${url}`)
    }
    t.equal(seen.size, 2, 'two distinct uploads')
    t.same((await readdir(dir)).filter((name) => name !== '.metadata').sort(), [`at ${base.replaceAll('/', '_')}.txt`, `at ${base.replaceAll('/', '_')}_.txt`])
  }

  t.test('default router', async (t) => {
    const { app, dir } = await buildApp(t)
    await check(t, app, '/uploads', dir)
  })

  t.test('routerOptions.ignoreTrailingSlash', async (t) => {
    const { app, dir } = await buildApp(t, {}, { routerOptions: { ignoreTrailingSlash: true } })
    await check(t, app, '/uploads', dir)
  })

  t.test('ignoreTrailingSlash as a top-level server option (deprecated in Fastify 5, still honoured)', async (t) => {
    const dir = t.testdir()
    const app = newApp(t, { ignoreTrailingSlash: true, pluginTimeout: 2000 })
    try {
      await app.register(tus, { uploadPath: dir })
    } catch (error) {
      const { code, message } = error as { code?: string, message: string }
      t.fail(`the registration fails: ${code} ${message}`)
      return
    }
    await check(t, app, '/uploads', dir)
  })

  t.test('uploadUrl given with a trailing slash', async (t) => {
    const { app, dir } = await buildApp(t, { uploadUrl: '/files/' })
    await check(t, app, '/files', dir)
    t.equal(app.tusUrlFor('tus:/files'), '/files', 'the route name has no trailing slash')
  })

  t.test('uploadUrl "/" under a prefix', async (t) => {
    const dir = t.testdir()
    const app = newApp(t)
    await app.register(async (api) => { await api.register(tus, { uploadPath: dir, uploadUrl: '/' }) }, { prefix: '/api' })
    await check(t, app, '/api', dir)
  })

  t.test('ignoreTrailingSlash with a prefix', async (t) => {
    const dir = t.testdir()
    const app = newApp(t, { routerOptions: { ignoreTrailingSlash: true } })
    await app.register(async (api) => { await api.register(tus, { uploadPath: dir }) }, { prefix: '/api' })
    await check(t, app, '/api/uploads', dir)
  })
})

t.test('URL params fill the placeholders of uploadPath', async (t) => {
  const root = t.testdir()
  const app = newApp(t)
  await app.register(tus, { uploadPath: join(root, '{username}'), uploadUrl: '/users/:username/uploads' })

  for (const [username, encoded] of [['alice', 'alice'], ['bob', 'bob'], ['Zoë Smith', 'Zo%C3%AB%20Smith'], ['...', '...']] as const) {
    const content = `the file of ${username}`
    const { response, path } = await createUpload(app, named('avatar.txt', Buffer.byteLength(content)), `/users/${encoded}/uploads`)
    t.equal(response.statusCode, 201, username)
    t.match(response.headers.location, new RegExp(`^http://localhost:80/users/${encoded.replace(/\./g, '\\.')}/uploads/[A-Za-z0-9_-]{21}$`),
      `the Location of ${JSON.stringify(username)} carries the param, URL-encoded`)
    t.equal((await patchUpload(app, path, 0, content)).statusCode, 204)
    t.equal(await readFile(join(root, username, 'avatar.txt'), 'utf8'), content, `the file lands in <dir>/${username}/`)
  }
  t.same((await readdir(root)).sort(), ['...', 'Zoë Smith', 'alice', 'bob'])

  t.test('an upload is only found under the params it was created with', async (t) => {
    const { path } = await createUpload(app, named('mine.txt', 3), '/users/alice/uploads')
    const stolen = `/users/bob/uploads/${uidOf(path)}`
    t.equal((await headUpload(app, stolen)).statusCode, 404)
    t.equal((await patchUpload(app, stolen, 0, 'abc')).statusCode, 404)
    t.equal((await app.inject({ method: 'DELETE', url: stolen, headers: TUS })).statusCode, 404)
    t.equal((await headUpload(app, path)).statusCode, 200)
  })

  t.test('several placeholders', async (t) => {
    const dir = t.testdir()
    const app = newApp(t)
    await app.register(tus, { uploadPath: join(dir, 'orgs', '{org}', 'people', '{user}'), uploadUrl: '/orgs/:org/users/:user/uploads' })
    const { response, path } = await createUpload(app, named('x.txt', 2), '/orgs/acme/users/wile/uploads')
    t.equal(response.statusCode, 201)
    t.match(path, /^\/orgs\/acme\/users\/wile\/uploads\/[A-Za-z0-9_-]{21}$/)
    t.equal((await patchUpload(app, path, 0, 'hi')).statusCode, 204)
    t.equal(await readFile(join(dir, 'orgs', 'acme', 'people', 'wile', 'x.txt'), 'utf8'), 'hi')
  })
})

t.test('guards: the onRequest option', async (t) => {
  const calls: string[] = []
  /** 401 without credentials. */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    calls.push(`${request.method} ${request.url}`)
    if (request.headers.authorization === undefined) return reply.code(401).send({ error: 'who are you?' })
  }
  /** 403 for a user who is not the one in the URL. */
  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const { username } = request.params as { username: string }
    if (request.headers.authorization !== `Bearer ${username}`) return reply.code(403).send({ error: 'not yours' })
  }
  const root = t.testdir()
  const app = newApp(t)
  await app.register(tus, {
    uploadPath: join(root, '{username}'), uploadUrl: '/users/:username/uploads', onRequest: [authenticate, authorize]
  })
  const bob = { authorization: 'Bearer bob' }
  const eve = { authorization: 'Bearer eve' }

  t.test('allowed: every method works', async (t) => {
    const { response, path } = await createUpload(app, { ...bob, ...named('ok.txt', 5) }, '/users/bob/uploads')
    t.equal(response.statusCode, 201)
    t.equal((await patchUpload(app, path, 0, 'hel', bob)).statusCode, 204)
    const head = await app.inject({ method: 'HEAD', url: path, headers: { ...TUS, ...bob } })
    t.equal(head.statusCode, 200)
    t.equal(head.headers['upload-offset'], '3')
    t.equal((await patchUpload(app, path, 3, 'lo', bob)).statusCode, 204)
    t.equal(await readFile(join(root, 'bob', 'ok.txt'), 'utf8'), 'hello')
    t.equal((await app.inject({ method: 'DELETE', url: path, headers: { ...TUS, ...bob } })).statusCode, 204)
  })

  t.test('denied creation: 401 and 403, no record created', async (t) => {
    for (const [headers, status] of [[{}, 401], [eve, 403]] as const) {
      const plain = await createUpload(app, { ...headers, ...named(`denied-${status}.txt`, 5) }, '/users/carol/uploads')
      t.equal(plain.response.statusCode, status)
      t.equal(plain.response.headers['tus-resumable'], '1.0.0', 'the denial still says Tus-Resumable')
      t.notOk(plain.response.headers.location)
      const withBody = await createUpload(app, { ...headers, ...named(`denied-body-${status}.txt`, 5), 'content-type': OCTET }, '/users/carol/uploads', 'hello')
      t.equal(withBody.response.statusCode, status, 'creation-with-upload too')
      const slash = await createUpload(app, { ...headers, ...named(`denied-slash-${status}.txt`, 5) }, '/users/carol/uploads/')
      t.equal(slash.response.statusCode, status, 'on the trailing-slash creation URL too')
    }
    t.notOk(await exists(join(root, 'carol')), 'not even the directory was created')
    const noVersion = await app.inject({ method: 'POST', url: '/users/carol/uploads', headers: { 'upload-length': '1' } })
    t.equal(noVersion.statusCode, 401, 'the guard answers before the protocol checks')
  })

  t.test('denied PATCH: no byte written, the record unchanged', async (t) => {
    const { path } = await createUpload(app, { ...bob, ...named('guarded.bin', 10) }, '/users/bob/uploads')
    const dir = join(root, 'bob')
    const record = join(dir, '.metadata', `${uidOf(path)}.json`)
    const before = await readFile(record, 'utf8')
    const listing = await tree(dir)
    for (const [headers, status] of [[{}, 401], [eve, 403]] as const) {
      t.equal((await patchUpload(app, path, 0, '0123456789', headers)).statusCode, status)
      const override = await app.inject({
        method: 'POST', url: path, headers: { ...TUS, ...headers, 'x-http-method-override': 'PATCH', 'content-type': OCTET, 'upload-offset': '0' }, payload: '0123'
      })
      t.equal(override.statusCode, status, 'PATCH through X-HTTP-Method-Override')
      t.equal((await app.inject({ method: 'DELETE', url: path, headers: { ...TUS, ...headers } })).statusCode, status, 'DELETE')
      t.equal((await app.inject({ method: 'HEAD', url: path, headers: { ...TUS, ...headers } })).statusCode, status, 'HEAD')
    }
    t.notOk(await exists(join(dir, '.metadata', `${uidOf(path)}.part`)), 'no .part file')
    t.equal(await readFile(record, 'utf8'), before, 'the record is as it was')
    t.same(await tree(dir), listing, 'the directory is as it was')
    const head = await app.inject({ method: 'HEAD', url: path, headers: { ...TUS, ...bob } })
    t.equal(head.headers['upload-offset'], '0')
  })

  t.test('over a socket, the denial comes before the body is sent, with Connection: close', async (t) => {
    const { path } = await createUpload(app, { ...bob, ...named('socket.bin', 1000) }, '/users/bob/uploads')
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = httpRequest({
        port,
        host: '127.0.0.1',
        method: 'PATCH',
        path,
        headers: { ...TUS, ...eve, 'content-type': OCTET, 'upload-offset': '0', 'content-length': '1000' }
      })
      request.on('response', (response) => { response.resume(); resolve(response); request.destroy() })
      request.on('error', reject)
      request.flushHeaders() // headers only: the 1000 bytes are never sent
      setTimeout(() => reject(new Error('no answer before the body')), 5000).unref()
    })
    t.equal(response.statusCode, 403)
    t.equal(response.headers.connection, 'close')
    t.notOk(await exists(join(root, 'bob', '.metadata', `${uidOf(path)}.part`)), 'no .part file')
  })

  t.test('OPTIONS is never guarded', async (t) => {
    calls.length = 0
    for (const url of ['/users/bob/uploads', '/users/bob/uploads/', '/users/bob/uploads/AAAAAAAAAAAAAAAAAAAAA']) {
      const response = await app.inject({ method: 'OPTIONS', url })
      t.equal(response.statusCode, 204, url)
      t.equal(response.headers['tus-version'], '1.0.0')
    }
    t.same(calls, [], 'the guard did not even run')
  })
})

t.test('guards: a hook of an encapsulating context', async (t) => {
  const root = t.testdir()
  const app = newApp(t)
  const auth = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.headers.authorization !== 'Bearer secret') return reply.code(401).send()
  }
  await app.register(async (scope) => {
    scope.addHook('onRequest', auth)
    await scope.register(tus, { uploadPath: join(root, 'guarded') })
  })
  await app.register(tus, { uploadPath: join(root, 'open'), uploadUrl: '/open' })
  const key = { authorization: 'Bearer secret' }

  const denied = await createUpload(app, named('a.txt', 1))
  t.equal(denied.response.statusCode, 401)
  t.notOk(await exists(join(root, 'guarded')), 'no record created')
  const allowed = await createUpload(app, { ...key, ...named('a.txt', 1) })
  t.equal(allowed.response.statusCode, 201)
  t.equal((await patchUpload(app, allowed.path, 0, 'x')).statusCode, 401)
  t.notOk(await exists(join(root, 'guarded', '.metadata', `${uidOf(allowed.path)}.part`)), 'no byte written')
  t.equal((await patchUpload(app, allowed.path, 0, 'x', key)).statusCode, 204)
  t.equal(await readFile(join(root, 'guarded', 'a.txt'), 'utf8'), 'x')
  const open = await createUpload(app, named('a.txt', 0), '/open')
  t.equal(open.response.statusCode, 201, 'a registration outside the scope is not guarded')
  // Fastify encapsulation: a hook added to the scope runs for every route in it,
  // OPTIONS included; a guard meant to let CORS preflights through must skip OPTIONS itself.
  t.equal((await app.inject({ method: 'OPTIONS', url: '/uploads' })).statusCode, 401, 'the scope hook also sees OPTIONS')
})

t.test('onUploadDone gets (request, resource, filePath) once the file is in place', async (t) => {
  type Call = { method: string, params: unknown, resource: CompletedResource, filePath: string, content: string }
  const calls: Call[] = []
  const { app, dir } = await buildApp(t, {
    onUploadDone: async (request, resource, filePath) => {
      calls.push({ method: request.method, params: { ...request.params as object }, resource, filePath, content: await readFile(filePath, 'utf8') })
    }
  })

  t.test('after two PATCHes', async (t) => {
    calls.length = 0
    const metadataHeader = encodeMetadata({ filename: 'hello.txt', filetype: 'text/plain', note: 'Grüße, 世界' }) + ',flag'
    const { path } = await createUpload(app, { 'upload-length': '11', 'upload-metadata': metadataHeader })
    t.equal((await patchUpload(app, path, 0, 'hello ')).statusCode, 204)
    t.same(calls, [], 'not called before the last byte')
    t.equal((await patchUpload(app, path, 6, 'world')).statusCode, 204)
    t.equal(calls.length, 1)
    const call = calls[0] as Call
    t.equal(call.method, 'PATCH', 'the request is the one that completed the upload')
    t.same(call.params, { uid: uidOf(path) })
    t.same(call.resource, {
      uid: uidOf(path),
      fileName: 'hello.txt',
      fileSize: 11,
      offset: 11,
      metadataHeader,
      metadata: { filename: 'hello.txt', filetype: 'text/plain', note: 'Grüße, 世界', flag: '' }
    })
    t.equal(call.resource.offset, call.resource.fileSize, 'offset === fileSize (aiohttp-tus passed the offset before the last chunk)')
    t.equal(call.filePath, join(dir, 'hello.txt'))
    t.equal(call.content, 'hello world', 'the completed file is there when the hook runs')
    const head = await headUpload(app, path)
    t.equal(head.statusCode, 200, 'HEAD after completion is 200 (aiohttp-tus: 404)')
    t.equal(head.headers['upload-offset'], '11')
    t.equal(head.headers['upload-metadata'], metadataHeader, 'with Upload-Metadata as sent')
    t.equal((await patchUpload(app, path, 11, '')).statusCode, 204, 'an empty PATCH at the end')
    t.equal(calls.length, 1, 'HEAD and an empty PATCH after completion do not call it again')
  })

  t.test('creation-with-upload completing at once', async (t) => {
    calls.length = 0
    const { response, path } = await createUpload(app, { ...named('direct.txt', 3), 'content-type': OCTET }, '/uploads', 'abc')
    t.equal(response.statusCode, 201)
    t.equal(response.headers['upload-offset'], '3')
    t.equal(calls.length, 1)
    t.equal(calls[0]?.method, 'POST')
    t.equal(calls[0]?.resource.uid, uidOf(path))
    t.equal(calls[0]?.content, 'abc')
  })

  t.test('an empty upload completes at creation', async (t) => {
    calls.length = 0
    const { response } = await createUpload(app, named('empty.txt', 0))
    t.equal(response.statusCode, 201)
    t.equal(calls.length, 1)
    t.match(calls[0]?.resource, { fileSize: 0, offset: 0, fileName: 'empty.txt' })
    t.equal(calls[0]?.content, '')
    t.equal((await stat(join(dir, 'empty.txt'))).size, 0)
  })

  t.test('a deferred length, declared with the last chunk', async (t) => {
    calls.length = 0
    const { path } = await createUpload(app, { 'upload-defer-length': '1', 'upload-metadata': encodeMetadata({ filename: 'deferred.txt' }) })
    t.equal((await patchUpload(app, path, 0, 'abc')).statusCode, 204)
    t.same(calls, [])
    t.equal((await patchUpload(app, path, 3, 'def', { 'upload-length': '6' })).statusCode, 204)
    t.equal(calls.length, 1)
    t.match(calls[0]?.resource, { fileSize: 6, offset: 6 })
    t.equal(calls[0]?.content, 'abcdef')
  })

  t.test('without filename metadata the file is named by its uid', async (t) => {
    calls.length = 0
    const { path } = await createUpload(app, { 'upload-length': '9' })
    t.equal((await patchUpload(app, path, 0, 'anonymous')).statusCode, 204)
    t.equal(calls[0]?.resource.fileName, uidOf(path))
    t.equal(calls[0]?.filePath, join(dir, uidOf(path)))
    t.same(calls[0]?.resource.metadata, {})
  })

  t.test('an error it throws is the answer to the completing request', async (t) => {
    const failing = await buildApp(t, {
      onUploadDone: () => { throw Object.assign(new Error('virus found'), { statusCode: 422 }) }
    })
    const { path } = await createUpload(failing.app, named('bad.txt', 4))
    const response = await patchUpload(failing.app, path, 0, 'evil')
    t.equal(response.statusCode, 422)
    t.match(response.json(), { message: 'virus found' })
    t.equal(response.headers['tus-resumable'], '1.0.0')
  })
})

t.test('allowOverwriteFiles: false (default)', async (t) => {
  t.test('a second creation of a name in flight is 409; so is one after it completed', async (t) => {
    const { app, dir } = await buildApp(t)
    const first = await createUpload(app, named('dup.txt', 6))
    t.equal(first.response.statusCode, 201)
    t.equal((await patchUpload(app, first.path, 0, 'fir')).statusCode, 204)
    const state = await stateFiles(dir)
    const second = await createUpload(app, named('dup.txt', 6))
    t.equal(second.response.statusCode, 409)
    t.equal(second.response.json().code, 'FST_TUS_FILE_EXISTS')
    t.notOk(second.response.headers.location)
    t.same(await stateFiles(dir), state, 'the refused creation left nothing behind')
    const sanitizedSame = await createUpload(app, named('../dup.txt', 6))
    t.equal(sanitizedSame.response.statusCode, 409, 'a name that sanitizes to the same one clashes too')
    t.equal((await patchUpload(app, first.path, 3, 'st!')).statusCode, 204)
    t.equal(await readFile(join(dir, 'dup.txt'), 'utf8'), 'first!')
    const third = await createUpload(app, named('dup.txt', 5))
    t.equal(third.response.statusCode, 409)
    t.equal(third.response.json().code, 'FST_TUS_FILE_EXISTS')
    const withBody = await createUpload(app, { ...named('dup.txt', 5), 'content-type': OCTET }, '/uploads', 'third')
    t.equal(withBody.response.statusCode, 409, 'creation-with-upload too')
    t.equal(await readFile(join(dir, 'dup.txt'), 'utf8'), 'first!', 'the completed file is untouched')
  })

  t.test('concurrent creations of one name: exactly one wins', async (t) => {
    const { app } = await buildApp(t)
    const responses = await Promise.all(Array.from({ length: 8 }, () => createUpload(app, named('rush.txt', 1))))
    t.same(responses.map(({ response }) => response.statusCode).sort(), [201, 409, 409, 409, 409, 409, 409, 409])
  })

  t.test('hello.png and hello.txt do not clash (aiohttp-tus globbed on the stem)', async (t) => {
    const { app, dir } = await buildApp(t)
    const png = await createUpload(app, named('hello.png', 3))
    const txt = await createUpload(app, named('hello.txt', 3))
    const bare = await createUpload(app, named('hello', 3))
    const upper = await createUpload(app, named('HELLO.txt', 3))
    t.same([png, txt, bare, upper].map(({ response }) => response.statusCode), [201, 201, 201, 201])
    for (const [{ path }, content] of [[png, 'png'], [txt, 'txt'], [bare, 'bar'], [upper, 'UPP']] as const) {
      t.equal((await patchUpload(app, path, 0, content)).statusCode, 204)
    }
    t.same((await readdir(dir)).filter((name) => name !== '.metadata').sort(), ['HELLO.txt', 'hello', 'hello.png', 'hello.txt'])
    t.equal(await readFile(join(dir, 'hello.png'), 'utf8'), 'png')
    t.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'txt')
    t.equal((await createUpload(app, named('hello.jpg', 1))).response.statusCode, 201, 'a completed hello.png does not block hello.jpg')
  })

  t.test('the same name in different placeholder directories does not clash', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    await app.register(tus, { uploadPath: join(root, '{username}'), uploadUrl: '/users/:username/uploads' })
    const alice = await createUpload(app, named('cv.pdf', 5), '/users/alice/uploads')
    const bob = await createUpload(app, named('cv.pdf', 3), '/users/bob/uploads')
    t.equal(alice.response.statusCode, 201)
    t.equal(bob.response.statusCode, 201, 'both in flight at once')
    t.equal((await patchUpload(app, alice.path, 0, 'alice')).statusCode, 204)
    t.equal((await patchUpload(app, bob.path, 0, 'bob')).statusCode, 204)
    t.equal(await readFile(join(root, 'alice', 'cv.pdf'), 'utf8'), 'alice')
    t.equal(await readFile(join(root, 'bob', 'cv.pdf'), 'utf8'), 'bob')
    const again = await createUpload(app, named('cv.pdf', 1), '/users/alice/uploads')
    t.equal(again.response.statusCode, 409, 'but within one directory the name is taken (aiohttp-tus skipped the check with placeholders)')
  })

  t.test('DELETE of an upload in flight frees its name', async (t) => {
    const { app, dir } = await buildApp(t)
    const first = await createUpload(app, named('free.txt', 4))
    t.equal((await patchUpload(app, first.path, 0, 'ab')).statusCode, 204)
    t.equal((await app.inject({ method: 'DELETE', url: first.path, headers: TUS })).statusCode, 204)
    const second = await createUpload(app, named('free.txt', 4))
    t.equal(second.response.statusCode, 201)
    t.equal((await patchUpload(app, second.path, 0, 'next')).statusCode, 204)
    t.equal(await readFile(join(dir, 'free.txt'), 'utf8'), 'next')
  })

  t.test('a file put there by someone else is never replaced', async (t) => {
    const { app, dir } = await buildApp(t)
    await writeFile(join(dir, 'theirs.txt'), 'not yours')
    t.equal((await createUpload(app, named('theirs.txt', 4))).response.statusCode, 409, 'refused at creation')
    const late = await createUpload(app, named('late.txt', 4))
    t.equal(late.response.statusCode, 201)
    await writeFile(join(dir, 'late.txt'), 'appeared meanwhile')
    const response = await patchUpload(app, late.path, 0, 'mine')
    t.equal(response.statusCode, 409, 'completion refuses to replace it')
    t.equal(response.json().code, 'FST_TUS_FILE_EXISTS')
    t.equal(await readFile(join(dir, 'late.txt'), 'utf8'), 'appeared meanwhile')
    t.equal(await readFile(join(dir, 'theirs.txt'), 'utf8'), 'not yours')
  })
})

t.test('allowOverwriteFiles: true', async (t) => {
  t.test('a second upload of a name replaces the file on completion', async (t) => {
    const { app, dir } = await buildApp(t, { allowOverwriteFiles: true })
    await uploadWhole(app, Buffer.from('the first, longer content'), { filename: 'same.txt' })
    t.equal(await readFile(join(dir, 'same.txt'), 'utf8'), 'the first, longer content')
    const { response, path } = await createUpload(app, named('same.txt', 6))
    t.equal(response.statusCode, 201)
    t.equal((await patchUpload(app, path, 0, 'sec')).statusCode, 204)
    t.equal(await readFile(join(dir, 'same.txt'), 'utf8'), 'the first, longer content', 'replaced only on completion')
    t.equal((await patchUpload(app, path, 3, 'ond')).statusCode, 204)
    t.equal(await readFile(join(dir, 'same.txt'), 'utf8'), 'second', 'replaced whole, no bytes of the longer file left')
    await writeFile(join(dir, 'external.txt'), 'external')
    await uploadWhole(app, Buffer.from('ours'), { filename: 'external.txt' })
    t.equal(await readFile(join(dir, 'external.txt'), 'utf8'), 'ours')
  })

  t.test('two same-name uploads in flight both complete; the last to finish wins', async (t) => {
    const { app, dir } = await buildApp(t, { allowOverwriteFiles: true })
    const a = await createUpload(app, named('race.txt', 8))
    const b = await createUpload(app, named('race.txt', 8))
    t.equal(a.response.statusCode, 201)
    t.equal(b.response.statusCode, 201)
    t.equal((await patchUpload(app, a.path, 0, 'AAAA')).statusCode, 204)
    t.equal((await patchUpload(app, b.path, 0, 'BBBBBBBB')).statusCode, 204)
    t.equal(await readFile(join(dir, 'race.txt'), 'utf8'), 'BBBBBBBB')
    t.equal((await patchUpload(app, a.path, 4, 'aaaa')).statusCode, 204)
    t.equal(await readFile(join(dir, 'race.txt'), 'utf8'), 'AAAAaaaa', 'a finished last')
    for (const { path } of [a, b]) t.equal((await headUpload(app, path)).headers['upload-offset'], '8', 'both are complete')

    const c = await createUpload(app, named('race.txt', 4))
    const d = await createUpload(app, named('race.txt', 4))
    const finals = await Promise.all([patchUpload(app, c.path, 0, 'CCCC'), patchUpload(app, d.path, 0, 'DDDD')])
    t.same(finals.map((response: LightMyRequestResponse) => response.statusCode), [204, 204], 'concurrent completions both succeed')
    t.match(await readFile(join(dir, 'race.txt'), 'utf8'), /^(CCCC|DDDD)$/, 'one of them whole, never a mix')
  })
})

t.test('multi-chunk uploads are byte-exact', async (t) => {
  const { app, dir } = await buildApp(t)
  const cases: Array<[string, number, number]> = [
    ['1-byte chunks', 300, 1],
    ['7-byte chunks', 1000, 7],
    ['64 KiB chunks', 1024 * 1024 + 123, 64 * 1024],
    ['1 MiB chunks', 3 * 1024 * 1024 + 17, 1024 * 1024],
    ['one chunk', 3 * 1024 * 1024 + 17, 3 * 1024 * 1024 + 17]
  ]
  for (const [label, size, chunkSize] of cases) {
    t.test(label, async (t) => {
      const data = seededBytes(size, size + chunkSize)
      const fileName = `${label.replaceAll(' ', '-')}.bin`
      const { response, path } = await createUpload(app, named(fileName, size))
      t.equal(response.statusCode, 201)
      await sendChunks(t, app, path, data, chunkSize)
      const stored = await readFile(join(dir, fileName))
      t.equal(stored.length, size)
      t.ok(stored.equals(data), 'byte-exact')
      t.equal((await headUpload(app, path)).headers['upload-offset'], String(size))
    })
  }

  t.test('first chunk with the creation, the rest by PATCH', async (t) => {
    const data = seededBytes(200_000, 99)
    const { response, path } = await createUpload(app, { ...named('mixed.bin', data.length), 'content-type': OCTET }, '/uploads', data.subarray(0, 70_000))
    t.equal(response.statusCode, 201)
    t.equal(response.headers['upload-offset'], '70000')
    await sendChunks(t, app, path, data, 50_000, 70_000)
    t.ok((await readFile(join(dir, 'mixed.bin'))).equals(data))
  })

  t.test('a deferred length declared midway', async (t) => {
    const data = seededBytes(100_000, 7)
    const { path } = await createUpload(app, { 'upload-defer-length': '1', 'upload-metadata': encodeMetadata({ filename: 'deferred.bin' }) })
    t.equal((await patchUpload(app, path, 0, data.subarray(0, 30_000))).statusCode, 204)
    t.equal((await headUpload(app, path)).headers['upload-defer-length'], '1')
    t.equal((await patchUpload(app, path, 30_000, data.subarray(30_000, 60_000), { 'upload-length': String(data.length) })).statusCode, 204)
    await sendChunks(t, app, path, data, 40_000, 60_000)
    t.ok((await readFile(join(dir, 'deferred.bin'))).equals(data))
  })
})

t.test('reverse routing: tusUrlFor', async (t) => {
  t.test('with uploadResourceName and params', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    await app.register(tus, { uploadPath: join(root, '{username}'), uploadUrl: '/users/:username/uploads', uploadResourceName: 'user_upload' })
    t.equal(app.tusUrlFor('user_upload', { username: 'bob' }), '/users/bob/uploads')
    t.equal(app.tusUrlFor('user_upload', { username: 42 }), '/users/42/uploads')
    t.equal(app.tusUrlFor('user_upload', { username: 'Zoë Smith/..' }), '/users/Zo%C3%AB%20Smith%2F../uploads', 'values are URL-encoded')
    const url = app.tusUrlFor('user_upload', { username: 'Zoë Smith' })
    const { response, path } = await createUpload(app, named('r.txt', 1), url)
    t.equal(response.statusCode, 201)
    const resource = app.tusUrlFor('user_upload_resource', { username: 'Zoë Smith', uid: uidOf(path) })
    t.equal(resource, `/users/Zo%C3%AB%20Smith/uploads/${uidOf(path)}`)
    t.equal(resource, path, 'the resource URL is the Location of the creation')
    t.equal((await patchUpload(app, resource, 0, 'r')).statusCode, 204)
    t.equal(await readFile(join(root, 'Zoë Smith', 'r.txt'), 'utf8'), 'r')
    t.throws(() => app.tusUrlFor('user_upload'), { code: 'FST_TUS_MISSING_ROUTE_PARAM' })
    t.throws(() => app.tusUrlFor('user_upload', { username: '' }), { code: 'FST_TUS_MISSING_ROUTE_PARAM' })
    t.throws(() => app.tusUrlFor('user_upload_resource', { username: 'bob' }), { code: 'FST_TUS_MISSING_ROUTE_PARAM' }, 'uid missing')
    t.throws(() => app.tusUrlFor('tus:/users/:username/uploads'), { code: 'FST_TUS_UNKNOWN_ROUTE' }, 'an explicit name replaces the default one')
    t.throws(() => app.tusUrlFor('nope'), { code: 'FST_TUS_UNKNOWN_ROUTE' })
  })

  t.test('default names', async (t) => {
    const { app } = await buildApp(t)
    t.equal(app.tusUrlFor('tus:/uploads'), '/uploads')
    t.equal(app.tusUrlFor('tus:/uploads_resource', { uid: 'AAAAAAAAAAAAAAAAAAAAA' }), '/uploads/AAAAAAAAAAAAAAAAAAAAA')
    const { path } = await createUpload(app, named('d.txt', 1), app.tusUrlFor('tus:/uploads'))
    t.equal(app.tusUrlFor('tus:/uploads_resource', { uid: uidOf(path) }), path)
  })

  t.test('with a prefix from an encapsulating register', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    let api: FastifyInstance | undefined
    let v1: FastifyInstance | undefined
    await app.register(async (scope) => {
      await scope.register(tus, { uploadPath: join(root, 'api') })
      api = scope
      await scope.register(async (inner) => {
        await inner.register(tus, { uploadPath: join(root, '{org}'), uploadUrl: '/orgs/:org/uploads', uploadResourceName: 'org_upload' })
        v1 = inner
      }, { prefix: '/v1' })
    }, { prefix: '/api' })
    await app.ready()
    if (api === undefined || v1 === undefined) throw new Error('scopes not captured')
    t.equal(api.tusUrlFor('tus:/api/uploads'), '/api/uploads', 'the default name has the prefix')
    const { response, path } = await createUpload(app, named('p.txt', 1), api.tusUrlFor('tus:/api/uploads'))
    t.equal(response.statusCode, 201)
    t.equal(api.tusUrlFor('tus:/api/uploads_resource', { uid: uidOf(path) }), path)
    t.equal(v1.tusUrlFor('org_upload', { org: 'acme' }), '/api/v1/orgs/acme/uploads')
    t.equal(api.tusUrlFor('org_upload_resource', { org: 'acme', uid: 'x' }), '/api/v1/orgs/acme/uploads/x', 'names are app-wide')
    const org = await createUpload(app, named('o.txt', 1), v1.tusUrlFor('org_upload', { org: 'acme' }))
    t.equal(org.response.statusCode, 201)
    t.equal(org.path, v1.tusUrlFor('org_upload_resource', { org: 'acme', uid: uidOf(org.path) }))
  })

  t.test('a name registered twice fails the registration', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    await app.register(tus, { uploadPath: join(root, 'a'), uploadUrl: '/a', uploadResourceName: 'files' })
    await t.rejects(
      async () => { await app.register(tus, { uploadPath: join(root, 'b'), uploadUrl: '/b', uploadResourceName: 'files' }) },
      { code: 'FST_TUS_ROUTE_NAME_TAKEN' }
    )
  })

  t.test('app.ready() fails on a taken name, also N vs another N_resource', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    app.register(tus, { uploadPath: join(root, 'a'), uploadUrl: '/a', uploadResourceName: 'files' })
    app.register(tus, { uploadPath: join(root, 'b'), uploadUrl: '/b', uploadResourceName: 'files_resource' })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_TUS_ROUTE_NAME_TAKEN', message: /"files_resource"/ })
  })

  t.test('default names clash across sibling contexts', async (t) => {
    const root = t.testdir()
    const app = newApp(t)
    app.register(async (scope) => { await scope.register(tus, { uploadPath: join(root, 'a') }) })
    app.register(async (scope) => { await scope.register(tus, { uploadPath: join(root, 'b') }) })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_TUS_ROUTE_NAME_TAKEN', message: /"tus:\/uploads"/ })
  })

  t.test('separate apps do not share names', async (t) => {
    const root = t.testdir()
    for (const name of ['one', 'two']) {
      const app = newApp(t)
      await app.register(tus, { uploadPath: join(root, name), uploadResourceName: 'files' })
      t.equal(app.tusUrlFor('files'), '/uploads', name)
    }
  })
})
