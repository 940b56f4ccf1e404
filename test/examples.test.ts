// Every example in examples/ is started as its own process, on the sources
// (test/fixtures/self-reference.mjs), and used the way its comment says.
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { seededBytes } from './helpers.js'
import { startExample as start } from './example-runner.js'

const EXAMPLES = new URL('../examples/', import.meta.url).pathname
const TUS = { 'Tus-Resumable': '1.0.0' }

t.setTimeout(120_000)

/** A whole upload by tus-js-client; resolves with its URL. */
function upload (endpoint: string, data: Buffer, options: Record<string, unknown> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new tus.Upload(data, { endpoint, retryDelays: null, onSuccess: () => resolve(client.url as string), onError: reject, ...options })
    client.start()
  })
}

t.test('every example has a test', async (t) => {
  t.same((await readdir(EXAMPLES)).sort(), ['auth-guard.js', 'behind-proxy.js', 'per-user-directories.js', 'post-processing.js', 'several-endpoints.js', 'uppy-with-cors.js'])
})

t.test('auth-guard.js: no token, no upload; with it, the upload goes through; OPTIONS is never guarded', async (t) => {
  const dir = t.testdir()
  const [port] = await start(t, 'auth-guard.js', { env: { UPLOAD_DIR: dir, TOKEN: 'letmein' } })
  const endpoint = `http://127.0.0.1:${port}/files`
  const refused = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })
  t.equal(refused.status, 401)
  t.equal((await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Authorization: 'Bearer wrong' } })).status, 401)
  t.equal((await fetch(endpoint, { method: 'OPTIONS' })).status, 204)
  const data = seededBytes(100_000, 21)
  await upload(endpoint, data, { headers: { Authorization: 'Bearer letmein' }, metadata: { filename: 'guarded.bin' } })
  t.ok((await readFile(join(dir, 'guarded.bin'))).equals(data))
})

t.test('per-user-directories.js: each user uploads into a directory of their own, never outside', async (t) => {
  const dir = t.testdir()
  const [port] = await start(t, 'per-user-directories.js', { env: { UPLOAD_DIR: dir } })
  const { uploadUrl } = await (await fetch(`http://127.0.0.1:${port}/users/alice`)).json() as { uploadUrl: string }
  t.equal(uploadUrl, '/users/alice/files', 'reverse routing by resource name')
  const data = seededBytes(50_000, 22)
  await upload(`http://127.0.0.1:${port}${uploadUrl}`, data, { metadata: { filename: 'notes.bin' } })
  t.ok((await readFile(join(dir, 'alice', 'notes.bin'))).equals(data))
  t.equal((await fetch(`http://127.0.0.1:${port}/users/..%2F..%2Fetc/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })).status, 404)
  t.same(await readdir(dir), ['alice'])
})

t.test('several-endpoints.js: images and videos, each with its own directory and rules', async (t) => {
  const dir = t.testdir()
  const [port] = await start(t, 'several-endpoints.js', { env: { UPLOAD_DIR: dir } })
  const base = `http://127.0.0.1:${port}`
  const image = seededBytes(20_000, 23)
  await upload(`${base}/images`, image, { metadata: { filename: 'cat.png', filetype: 'image/png' } })
  t.ok((await readFile(join(dir, 'images', 'cat.png'))).equals(image))
  await t.rejects(upload(`${base}/images`, image, { metadata: { filename: 'notes.txt', filetype: 'text/plain' } }), /response code: 415/, 'not an image')
  const tooBig = await fetch(`${base}/images`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10000001' } })
  t.equal(tooBig.status, 413)
  const video = seededBytes(200_000, 24)
  await upload(`${base}/videos`, video, { metadata: { filename: 'clip.mp4' } })
  t.ok((await readFile(join(dir, 'videos', 'clip.mp4'))).equals(video))
  const options = await fetch(`${base}/videos`, { method: 'OPTIONS' })
  t.match(options.headers.get('tus-extension'), 'expiration')
  t.equal(options.headers.get('tus-max-size'), null, 'no limit for videos')
})

t.test('behind-proxy.js: the forwarded protocol and host make the Location', async (t) => {
  const dir = t.testdir()
  const [port] = await start(t, 'behind-proxy.js', { env: { UPLOAD_DIR: dir } })
  const created = await fetch(`http://127.0.0.1:${port}/files`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': '3', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'uploads.example.com' }
  })
  t.equal(created.status, 201)
  const location = created.headers.get('location') as string
  t.match(location, /^https:\/\/uploads\.example\.com\/files\/[\w-]+$/)
  const patched = await fetch(`http://127.0.0.1:${port}${new URL(location).pathname}`, {
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: 'abc'
  })
  t.equal(patched.status, 204)
})

t.test('uppy-with-cors.js: the Uppy page names the other origin, which answers its preflights with the exported header lists', async (t) => {
  const dir = t.testdir()
  const [apiPort, pagePort] = await start(t, 'uppy-with-cors.js', { env: { UPLOAD_DIR: dir }, listeners: 2 })
  const page = await (await fetch(`http://127.0.0.1:${pagePort}/`)).text()
  t.match(page, `"http://127.0.0.1:${apiPort}/files"`)
  for (const asset of ['uppy.min.mjs', 'uppy.min.css']) t.equal((await fetch(`http://127.0.0.1:${pagePort}/uppy/${asset}`)).status, 200, `Uppy's ${asset}`)
  const origin = `http://localhost:${pagePort}`
  const preflight = await fetch(`http://127.0.0.1:${apiPort}/files`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'tus-resumable,upload-length,upload-metadata' }
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), origin)
  t.match(preflight.headers.get('access-control-allow-headers'), 'Upload-Metadata')
  const created = await fetch(`http://127.0.0.1:${apiPort}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Origin: origin } })
  t.match(created.headers.get('access-control-expose-headers'), 'Location')
  const stranger = await fetch(`http://127.0.0.1:${apiPort}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1', Origin: 'https://elsewhere.example' } })
  t.equal(stranger.headers.get('access-control-allow-origin'), null)
})

t.test('post-processing.js: each completed file is checksummed, moved to storage and recorded', async (t) => {
  const dir = t.testdir()
  const [port] = await start(t, 'post-processing.js', { env: { UPLOAD_DIR: dir } })
  const data = seededBytes(300_000, 25)
  const url = await upload(`http://127.0.0.1:${port}/files`, data, { metadata: { filename: 'report.pdf' } })
  const uid = url.split('/').pop() as string
  const stored = join(dir, 'storage', `${uid}-report.pdf`)
  t.ok((await readFile(stored)).equals(data))
  const { createHash } = await import('node:crypto')
  t.match(JSON.parse(await readFile(join(dir, 'storage', 'index.jsonl'), 'utf8')), { uid, name: 'report.pdf', size: data.length, sha256: createHash('sha256').update(data).digest('hex'), stored })
  t.notOk((await readdir(join(dir, 'incoming'))).includes('report.pdf'), 'moved out of the upload directory')
})
