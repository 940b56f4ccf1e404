// Path traversal through every request-controlled input: the upload id, the
// route params that fill uploadPath's placeholders, and the filename metadata.
// Nothing may be read, written or removed outside the upload directory.
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import tus, { type CompletedResource, type FastifyTusOptions } from '../lib/index.js'
import { OCTET, TUS, createUpload, encodeMetadata, patchUpload, tree, uidOf } from './helpers.js'

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false)

async function newApp (t: Test, options: FastifyTusOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tus, options)
  return app
}

/**
 * A request sent as is over a socket: `app.inject` parses its URL with WHATWG
 * `URL`, which resolves `..`, `%2e%2e` and `\` before the server sees them.
 */
function rawRequest (
  port: number, method: string, path: string, headers: Record<string, string>, body?: string
): Promise<{ statusCode: number, body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    request.on('error', reject)
    request.end(body)
  })
}

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

type Send = (method: string, url: string, headers: Record<string, string>, body?: string) => Promise<{ statusCode: number, body: string }>

/** Every request on an upload URL that could touch the file system, as [label, method, headers, body]. */
function uploadRequests (offset: number): Array<[string, string, Record<string, string>, string | undefined]> {
  const patch = { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset) }
  return [
    ['HEAD', 'HEAD', { ...TUS }, undefined],
    ['PATCH', 'PATCH', patch, 'xyz'],
    ['DELETE', 'DELETE', { ...TUS }, undefined],
    ['POST as PATCH', 'POST', { ...patch, 'x-http-method-override': 'PATCH' }, 'xyz'],
    ['POST as HEAD', 'POST', { ...TUS, 'x-http-method-override': 'HEAD' }, undefined],
    ['POST as DELETE', 'POST', { ...TUS, 'x-http-method-override': 'DELETE' }, undefined]
  ]
}

t.test('upload ids: anything but a nanoid is 404, with no file-system effect', async (t) => {
  const root = t.testdir({
    // records where a traversing id would find them, each with 3 bytes of data
    'outside.json': '',
    'outside.part': 'abc',
    uploads: { 'escape.json': '', 'escape.part': 'abc' }
  })
  const uploads = join(root, 'uploads')
  const app = await newApp(t, { uploadPath: uploads })
  const { path } = await createUpload(app, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ filename: 'legit.txt' }) })
  t.equal((await patchUpload(app, path, 0, 'abc')).statusCode, 204)
  const uid = uidOf(path)
  const record = await readFile(join(uploads, '.metadata', `${uid}.json`), 'utf8')
  await writeFile(join(root, 'outside.json'), record)
  await writeFile(join(uploads, 'escape.json'), record)
  const before = await tree(root, 'content')
  t.ok(before.includes('outside.json = ' + JSON.stringify(record)), 'the bait is in place')

  const check = async (t: Test, send: Send, ids: string[]): Promise<void> => {
    for (const id of ids) {
      for (const [label, method, headers, body] of uploadRequests(3)) {
        const response = await send(method, `/uploads/${id}`, headers, body)
        t.equal(response.statusCode, 404, `${label} /uploads/${id}`)
      }
    }
    t.same(await tree(root, 'content'), before, 'nothing read into a response, written or removed, anywhere under the test directory')
  }

  t.test('through app.inject', async (t) => {
    await check(t, (method, url, headers, payload) => app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) }), [
      '..%2F..%2Foutside', // decodes to ../../outside: .metadata/../../outside.json is the bait
      '%2e%2e%2F%2e%2e%2Foutside',
      '..%2Fescape',
      '.%2F.%2F.%2F..%2F.%2F..%2Foutside', // 21 characters once decoded, like a nanoid
      '..%5C..%5Coutside',
      'AAAAAAAAAAAAAAAAAAA..',
      '...................AA',
      `${uid.slice(0, 19)}..`,
      `${uid}.json`,
      `${uid}.part`,
      `${uid}%00`,
      `%00${uid.slice(1)}`,
      `${uid}%2F..`,
      `${uid.slice(0, 20)}%C3%84`,
      encodeURIComponent(`${uid.slice(0, 20)}/`),
      uid.toLowerCase() === uid ? uid.toUpperCase() : uid.toLowerCase(), // the right shape, but no such upload
      'AAAAAAAAAAAAAAAAAAAAA'
    ])
  })

  t.test('over a socket, dot segments as sent', async (t) => {
    const port = await listen(app)
    await check(t, (method, url, headers, body) => rawRequest(port, method, url, headers, body), [
      '..', '.', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%2e', '..%2F..%2Foutside', '..\\..\\outside', '.\\..\\..\\outside'
    ])
  })

  t.test('the legit upload is untouched', async (t) => {
    const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
    t.equal(head.statusCode, 200)
    t.equal(head.headers['upload-offset'], '3')
    t.equal(await readFile(join(root, 'outside.part'), 'utf8'), 'abc')
    t.equal(await readFile(join(uploads, 'escape.part'), 'utf8'), 'abc')
  })
})

t.test('route params in uploadPath: not one plain segment is 404, with no file-system effect', async (t) => {
  const root = t.testdir({ users: {} })
  const app = await newApp(t, { uploadPath: join(root, 'users', '{username}'), uploadUrl: '/users/:username/uploads' })
  const { path } = await createUpload(app, { 'upload-length': '10', 'upload-metadata': encodeMetadata({ filename: 'a.txt' }) }, '/users/alice/uploads')
  t.equal((await patchUpload(app, path, 0, 'abc')).statusCode, 204)
  const uid = uidOf(path)
  // alice's upload copied where a traversing param would look for it
  const state = join(root, 'users', 'alice', '.metadata')
  for (const target of [root, join(root, 'users'), join(root, 'users', 'a', 'b'), join(root, 'users', 'a\\b'), join(root, 'users', '\\')]) {
    await cp(state, join(target, '.metadata'), { recursive: true })
  }
  const before = await tree(root, 'content')

  const check = async (t: Test, send: Send, values: string[]): Promise<void> => {
    for (const value of values) {
      const creation = await send('POST', `/users/${value}/uploads`, {
        ...TUS, 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'p.txt' })
      })
      t.equal(creation.statusCode, 404, `POST /users/${value}/uploads`)
      const withBody = await send('POST', `/users/${value}/uploads`, { ...TUS, 'upload-length': '3', 'content-type': OCTET }, 'xyz')
      t.equal(withBody.statusCode, 404, `POST /users/${value}/uploads with a body`)
      for (const [label, method, headers, body] of uploadRequests(3)) {
        const response = await send(method, `/users/${value}/uploads/${uid}`, headers, body)
        t.equal(response.statusCode, 404, `${label} /users/${value}/uploads/<alice's uid>`)
      }
    }
    t.same(await tree(root, 'content'), before, 'nothing created, changed or removed anywhere under the parent of the upload directories')
  }

  t.test('through app.inject', async (t) => {
    await check(t, (method, url, headers, payload) => app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) }), [
      '%2F', 'a%2Fb', '..%2F..', '%2e%2e%2F', '%00', 'a%00b', '%5C', 'a%5Cb', '%0A', 'a%0Db', '%7F', '%1B', ''
    ])
  })

  t.test('over a socket, dot segments and backslashes as sent', async (t) => {
    const port = await listen(app)
    await check(t, (method, url, headers, body) => rawRequest(port, method, url, headers, body), [
      '..', '.', '%2e%2e', '.%2e', '%2E', 'a\\b', '\\', '..\\..'
    ])
  })

  t.test('plain values still work, and stay inside', async (t) => {
    for (const [value, directory] of [['...', '...'], ['%20..%20', ' .. '], ['.hidden', '.hidden'], ['a.b', 'a.b']] as const) {
      const { response, path } = await createUpload(app, { 'upload-length': '2' }, `/users/${value}/uploads`)
      t.equal(response.statusCode, 201, `POST /users/${value}/uploads`)
      t.equal((await patchUpload(app, path, 0, 'ok')).statusCode, 204)
      t.equal(await readFile(join(root, 'users', directory, uidOf(path)), 'utf8'), 'ok', `lands in users/${directory}/`)
    }
  })
})

t.test('a route param that uploadPath does not use: an empty value leaves nothing behind', async (t) => {
  // uploadUrl has :team, uploadPath has no {team}: the value never names a directory,
  // but POST /teams//uploads matches the route with team = ''.
  const root = t.testdir()
  const app = await newApp(t, { uploadPath: join(root, 'teams'), uploadUrl: '/teams/:team/uploads' })
  const response = await app.inject({
    method: 'POST', url: '/teams//uploads', headers: { ...TUS, 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'team.txt' }) }
  })
  t.not(response.statusCode, 500, `POST /teams//uploads answered ${response.statusCode} ${response.body}`)
  const records = await readdir(join(root, 'teams', '.metadata')).catch(() => [])
  if (response.statusCode !== 201) t.same(records, [], 'a refused creation stores no record and no name reservation')
  const next = await createUpload(app, { 'upload-length': '3', 'upload-metadata': encodeMetadata({ filename: 'team.txt' }) }, '/teams/red/uploads')
  t.equal(next.response.statusCode, response.statusCode === 201 ? 409 : 201, 'the name is free unless the first creation succeeded')
})

/** How a name is shown in messages: long runs of one character abbreviated. */
const show = (name: string): string => JSON.stringify(name.replace(/(.)\1{9,}/gu, (run, char: string) => `${char}×${[...run].length}`))
  .replace(/[\u0080-\u009f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)

const UID = Symbol('the upload id')
type Expected = string | typeof UID

const FILE_NAMES: Array<[string, Expected]> = [
  ['../x', 'x'],
  ['../../etc/passwd', 'passwd'],
  ['/abs/path', 'path'],
  ['a/b/c.txt', 'c.txt'],
  ['.metadata/../../y', 'y'],
  ['../'.repeat(300) + 'b'.repeat(100) + '.txt', 'b'.repeat(100) + '.txt'],
  ['..', UID],
  ['.', UID],
  ['.metadata', UID],
  ['', UID],
  ['/', UID],
  ['dir/', UID],
  ['a/..', UID],
  ['  ..  ', UID],
  [' .metadata\n', UID],
  ['.\0.', UID],
  ['.metadata\0', UID],
  ['nul\0byte.txt', 'nulbyte.txt'],
  ['\0../z', 'z'],
  ['line\nbreak\r.txt', 'linebreak.txt'],
  ['\x1b[31mred\x7f.txt', '[31mred.txt'],
  ['tab\there.txt', 'tabhere.txt'],
  ['..\\..\\win.ini', 'win.ini'],
  ['C:\\Windows\\evil.dll', 'evil.dll'],
  ['..\\../mixed.txt', 'mixed.txt'],
  ['...', '...'],
  ['.bashrc', '.bashrc'],
  ['a\u2215b.txt', 'a\u2215b.txt'], // DIVISION SLASH is no separator
  ['..\uff0f..\uff0ffw.txt', '..\uff0f..\uff0ffw.txt'], // nor is FULLWIDTH SOLIDUS
  ['a'.repeat(996) + '.txt', 'a'.repeat(251) + '.txt'], // 1000 bytes → 255, extension kept
  ['x'.repeat(300), 'x'.repeat(255)],
  ['a'.repeat(300) + '.' + 'b'.repeat(40), 'a'.repeat(255)], // an extension of 41 bytes is not one
  ['.'.repeat(300), '.'.repeat(255)],
  ['é'.repeat(200) + '.txt', 'é'.repeat(125) + '.txt'], // 404 bytes → 254: no é cut in half
  ['é'.repeat(125) + 'a.txt', 'é'.repeat(125) + 'a.txt'], // exactly 255 bytes: kept
  ['é'.repeat(125) + 'bc.txt', 'é'.repeat(125) + 'b.txt'], // 256 bytes → 255
  ['😀'.repeat(70) + '.png', '😀'.repeat(62) + '.png'], // 4-byte characters: 284 bytes → 252
  ['世界'.repeat(50) + '.tar.gz', '世界'.repeat(42) + '.gz'] // 3-byte characters: 307 bytes → 255, the last extension kept
]

for (const allowOverwriteFiles of [false, true]) {
  t.test(`filename metadata (allowOverwriteFiles: ${allowOverwriteFiles}): the file lands in the upload dir under its sanitized base name`, async (t) => {
    const root = t.testdir({ neighbour: { 'keep.txt': 'keep' } })
    const uploads = join(root, 'uploads')
    const done: Array<{ resource: CompletedResource, filePath: string }> = []
    const app = await newApp(t, { uploadPath: uploads, allowOverwriteFiles, onUploadDone: (_request, resource, filePath) => { done.push({ resource, filePath }) } })
    const expectedNames: string[] = []

    for (const [index, [input, expected]] of FILE_NAMES.entries()) {
      const content = `upload ${index}`
      const headers = { 'upload-length': String(content.length), 'upload-metadata': encodeMetadata({ filename: input }) }
      const withBody = index % 2 === 1
      const { response, path } = await createUpload(app, withBody ? { ...headers, 'content-type': OCTET } : headers, '/uploads', withBody ? content : undefined)
      t.equal(response.statusCode, 201, `creation with filename ${show(input)}`)
      if (!withBody) t.equal((await patchUpload(app, path, 0, content)).statusCode, 204)
      const name = expected === UID ? uidOf(path) : expected
      const call = done.at(-1)
      t.equal(call?.resource.uid, uidOf(path), 'completed')
      t.equal(call?.resource.fileName, name, `filename ${show(input)} becomes ${expected === UID ? 'the uid' : show(name)}`)
      t.equal(call?.filePath, join(uploads, name))
      t.equal(dirname(call?.filePath ?? ''), uploads, 'directly in the upload directory')
      t.ok(Buffer.byteLength(name) <= 255, `at most 255 bytes (${Buffer.byteLength(name)})`)
      t.equal(await readFile(join(uploads, name), 'utf8').catch(() => undefined), content, 'holds the upload')
      expectedNames.push(name)
    }

    t.same((await readdir(uploads)).sort(), [...expectedNames, '.metadata'].sort(), 'the upload directory holds exactly the completed files')
    t.same((await readdir(join(uploads, '.metadata'))).sort(), done.map(({ resource }) => `${resource.uid}.json`).sort(), 'and the records, nothing else')
    t.same((await readdir(root)).sort(), ['neighbour', 'uploads'], 'nothing next to the upload directory')
    t.same(await tree(join(root, 'neighbour'), 'content'), ['keep.txt = "keep"'])
    t.notOk(await exists(join(root, 'x')))
    t.notOk(await exists(join(dirname(root), 'passwd')))
  })
}

t.test('filename metadata that is not valid UTF-8 becomes U+FFFD, inside the upload dir', async (t) => {
  const root = t.testdir()
  const app = await newApp(t, { uploadPath: root })
  const raw = Buffer.concat([Buffer.from('../bad'), Buffer.from([0xff, 0xfe, 0x2f, 0xc0, 0xae, 0xc0, 0xae]), Buffer.from('.txt')]) // 0xc0 0xae: overlong "."
  const { response, path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': `filename ${raw.toString('base64')}` })
  t.equal(response.statusCode, 201)
  t.equal((await patchUpload(app, path, 0, 'u')).statusCode, 204)
  const names = (await readdir(root)).filter((name) => name !== '.metadata')
  t.same(names, ['\ufffd\ufffd\ufffd\ufffd.txt'], `becomes ${show(names[0] ?? '')}`)
})

t.test('filename metadata with C1 control characters: they are control characters too', async (t) => {
  // PROTOCOL.md: "control characters never survive"; README: "control characters removed".
  // U+0080–U+009F (C1, e.g. U+009B CSI, which 8-bit terminals read as ESC [) are control characters (Unicode Cc).
  const root = t.testdir()
  const app = await newApp(t, { uploadPath: root })
  const { response, path } = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'c1\u0085\u009b31mname\u0080.txt' }) })
  t.equal(response.statusCode, 201)
  t.equal((await patchUpload(app, path, 0, 'c')).statusCode, 204)
  const names = (await readdir(root)).filter((name) => name !== '.metadata')
  t.same(names, ['c131mname.txt'], `the file is named ${show(names[0] ?? '')}`)
})
