import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { CompletedResource } from '../lib/index.js'
import { OCTET, createUpload, encodeMetadata, firstDifference, headUpload, offsetOf, patchUpload, seededBytes, uidOf } from './helpers.js'
import { RawClient, requestHead, type RawResponse } from './raw-client.js'
import { startServer, waitFor } from './server.js'

const chunk = (data: Buffer, declared = data.length): Buffer => Buffer.concat([
  Buffer.from(`${declared.toString(16)}\r\n`), data, ...(declared === data.length ? [Buffer.from('\r\n')] : [])
])
const LAST_CHUNK = '0\r\n\r\n'

const patchHeaders = (offset: number, extra: Record<string, string> = {}): Record<string, string> => ({
  'tus-resumable': '1.0.0', 'content-type': OCTET, 'upload-offset': String(offset), ...extra
})

/** A whole PATCH on a connection of its own; the response must come within `timeout`. */
async function sendPatch (t: Test, port: number, path: string, offset: number, body: Buffer, timeout = 5000): Promise<RawResponse> {
  const client = await RawClient.open(t, port)
  await client.write(requestHead('PATCH', path, patchHeaders(offset, { 'content-length': String(body.length) })))
  await client.write(body)
  return client.response(timeout)
}

/** Polls HEAD until the upload's offset is `expected` (it can only grow towards it). */
function offsetReaches (app: FastifyInstance, path: string, expected: number): Promise<true> {
  return waitFor(`Upload-Offset ${expected}`, async () => (await offsetOf(app, path)) === expected ? true : undefined, 5000, 5)
}

/** The first index at which two buffers differ, -1 when they are equal. */

interface Setup {
  app: FastifyInstance
  dir: string
  port: number
  path: string
  data: Buffer
  done: Array<{ resource: CompletedResource, filePath: string }>
  partPath: string
}

/** A server and one upload of `size` bytes of known content named `name`. */
async function setup (t: Test, size: number, name: string): Promise<Setup> {
  const done: Setup['done'] = []
  const { app, dir, port } = await startServer(t, { onUploadDone: (_request, resource, filePath) => { done.push({ resource, filePath }) } })
  const { response, path } = await createUpload(app, { 'upload-length': String(size), 'upload-metadata': encodeMetadata({ filename: name }) })
  if (response.statusCode !== 201) throw new Error(`creation answered ${response.statusCode}`)
  return { app, dir, port, path, data: seededBytes(size, size), done, partPath: join(dir, '.metadata', `${uidOf(path)}.part`) }
}

/** The upload is complete, its file is `data`, `onUploadDone` ran once, and only the record is left. */
async function checkCompleted (t: Test, { app, dir, path, data, done }: Setup, name: string): Promise<void> {
  const stored = await readFile(join(dir, name))
  t.equal(stored.length, data.length, 'the completed file has the full size')
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.equal(done.length, 1, 'onUploadDone called once')
  t.equal(done[0]?.resource.offset, data.length)
  t.equal(done[0]?.filePath, join(dir, name))
  t.equal(await offsetOf(app, path), data.length, 'HEAD gives the full offset')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOf(path)}.json`], 'only the record stays')
}

for (const cut of ['destroy', 'resetAndDestroy'] as const) {
  t.test(`a PATCH with Content-Length cut after K bytes (socket.${cut}) keeps exactly K`, async (t) => {
    const upload = await setup(t, 3 * 1024 * 1024, 'cut.bin')
    const { app, port, path, data, partPath } = upload
    const K = 1_234_567
    const client = await RawClient.open(t, port)
    await client.write(requestHead('PATCH', path, patchHeaders(0, { 'content-length': String(data.length) })))
    await client.write(data.subarray(0, K))
    await offsetReaches(app, path, K)
    client.socket[cut]()
    await client.waitClosed()

    t.equal(await offsetOf(app, path), K, 'HEAD reports exactly the bytes received')
    const part = await readFile(partPath)
    t.equal(firstDifference(part, data.subarray(0, K)), -1, 'the kept bytes are the ones sent')

    const rest = await sendPatch(t, port, path, K, data.subarray(K))
    t.equal(rest.status, 204, 'the upload resumes at K')
    t.equal(rest.headers['upload-offset'], String(data.length))
    await checkCompleted(t, upload, 'cut.bin')
  })
}

t.test('a chunked PATCH cut after K bytes, inside a chunk, keeps exactly K', async (t) => {
  const upload = await setup(t, 2 * 1024 * 1024, 'chunked.bin')
  const { app, port, path, data, partPath } = upload
  const client = await RawClient.open(t, port)
  await client.write(requestHead('PATCH', path, patchHeaders(0, { 'transfer-encoding': 'chunked' })))
  // three whole chunks, then a chunk that announces 500 000 bytes and gets 100 003
  let K = 0
  for (const size of [300_000, 1, 299_999]) {
    await client.write(chunk(data.subarray(K, K + size)))
    K += size
  }
  await client.write(chunk(data.subarray(K, K + 100_003), 500_000))
  K += 100_003
  await offsetReaches(app, path, K)
  client.socket.destroy()
  await client.waitClosed()

  t.equal(await offsetOf(app, path), K, 'HEAD reports exactly the bytes received')
  t.equal(firstDifference(await readFile(partPath), data.subarray(0, K)), -1, 'the kept bytes are the ones sent')
  const rest = await sendPatch(t, port, path, K, data.subarray(K))
  t.equal(rest.status, 204)
  t.equal(rest.headers['upload-offset'], String(data.length))
  await checkCompleted(t, upload, 'chunked.bin')
})

t.test('a new PATCH ends a stalled one at once, and the bytes of the stalled one are kept', async (t) => {
  const upload = await setup(t, 3 * 1024 * 1024, 'taken-over.bin')
  const { app, port, path, data } = upload
  const K = 777_777
  const stalled = await RawClient.open(t, port)
  await stalled.write(requestHead('PATCH', path, patchHeaders(0, { 'content-length': String(data.length) })))
  await stalled.write(data.subarray(0, K))
  await offsetReaches(app, path, K)
  // the first client sends nothing more and keeps its socket open

  t.equal(await offsetOf(app, path), K, 'a resuming client learns the offset from HEAD')
  t.notOk(stalled.closed, 'HEAD does not end the stalled PATCH')
  const started = Date.now()
  const second = await sendPatch(t, port, path, K, data.subarray(K), 1000)
  const elapsed = Date.now() - started
  t.ok(elapsed < 1000, `the second PATCH did not wait for the stalled one (${elapsed} ms)`)
  t.equal(second.status, 204, 'the second PATCH proceeds')
  t.equal(second.headers['upload-offset'], String(data.length))

  const first = await stalled.response()
  t.equal(first.status, 409, 'the stalled PATCH is answered 409: tus clients ask where the upload stands, and go on')
  t.equal(JSON.parse(first.body).code, 'FST_TUS_INTERRUPTED')
  t.equal(first.headers['upload-offset'], String(K), 'with the offset it reached')
  t.equal(first.headers.connection, 'close', 'its unread body closes the connection')
  await stalled.waitClosed()
  t.pass('the server closed the stalled connection')
  await checkCompleted(t, upload, 'taken-over.bin')
})

t.test('a new PATCH with a stale offset ends a stalled one at once and gets a 409', async (t) => {
  const upload = await setup(t, 1024 * 1024, 'stale.bin')
  const { app, port, path, data } = upload
  const K = 300_001
  const stalled = await RawClient.open(t, port)
  await stalled.write(requestHead('PATCH', path, patchHeaders(0, { 'content-length': String(data.length) })))
  await stalled.write(data.subarray(0, K))
  await offsetReaches(app, path, K)

  const started = Date.now()
  const stale = await sendPatch(t, port, path, 0, data, 1000)
  t.ok(Date.now() - started < 1000, 'answered without waiting for the stalled PATCH')
  t.equal(stale.status, 409)
  t.equal(stale.headers['upload-offset'], String(K), 'the 409 says where the upload stands')
  const first = await stalled.response()
  t.equal(first.status, 409)
  t.equal(JSON.parse(first.body).code, 'FST_TUS_INTERRUPTED')
  await stalled.waitClosed()

  const rest = await sendPatch(t, port, path, K, data.subarray(K))
  t.equal(rest.status, 204)
  await checkCompleted(t, upload, 'stale.bin')
})

t.test('early rejections answer at once, close the connection and write nothing', async (t) => {
  const done: unknown[] = []
  const { app, dir, port } = await startServer(t, {
    onRequest: async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send()
    },
    onUploadDone: () => { done.push(true) }
  })
  const auth = { authorization: 'Bearer ok' }
  const size = 32 * 1024 * 1024
  const { response, path } = await createUpload(app, { ...auth, 'upload-length': String(size) })
  t.equal(response.statusCode, 201)
  const data = seededBytes(size, 5)
  const first = await patchUpload(app, path, 0, data.subarray(0, 1000), auth)
  t.equal(first.statusCode, 204)
  const partPath = join(dir, '.metadata', `${uidOf(path)}.part`)

  const cases: Array<{ name: string, status: number, code: string | undefined, headers: Record<string, string>, url?: string, length?: number }> = [
    { name: 'a wrong Upload-Offset', status: 409, code: 'FST_TUS_OFFSET_MISMATCH', headers: { ...auth, ...patchHeaders(5) } },
    { name: 'no Tus-Resumable', status: 412, code: 'FST_TUS_UNSUPPORTED_VERSION', headers: { ...auth, 'content-type': OCTET, 'upload-offset': '1000' } },
    { name: 'a guard', status: 401, code: undefined, headers: patchHeaders(1000) },
    { name: 'a body longer than the upload', status: 413, code: 'FST_TUS_TOO_LARGE', headers: { ...auth, ...patchHeaders(1000) }, length: size },
    { name: 'a wrong Content-Type', status: 415, code: 'FST_TUS_UNSUPPORTED_MEDIA_TYPE', headers: { ...auth, ...patchHeaders(1000), 'content-type': 'text/plain' } },
    { name: 'a malformed Upload-Offset', status: 400, code: 'FST_TUS_INVALID_HEADER', headers: { ...auth, ...patchHeaders(1000), 'upload-offset': '1e3' } },
    { name: 'an unknown upload', status: 404, code: 'FST_TUS_UPLOAD_NOT_FOUND', headers: { ...auth, ...patchHeaders(1000) }, url: '/uploads/AAAAAAAAAAAAAAAAAAAAA' }
  ]
  for (const { name, status, code, headers, url = path, length = 16 * 1024 * 1024 } of cases) {
    await t.test(name, async (t) => {
      const client = await RawClient.open(t, port)
      await client.write(requestHead('PATCH', url, { ...headers, 'content-length': String(length) }))
      await client.tryWrite(data.subarray(1000, 1000 + 256 * 1024))
      const answer = await client.response()
      t.equal(answer.status, status)
      if (code !== undefined) t.equal(JSON.parse(answer.body).code, code)
      t.equal(answer.headers.connection, 'close', 'Connection: close')
      t.equal(answer.headers['tus-resumable'], '1.0.0')
      if (status === 409) t.equal(answer.headers['upload-offset'], '1000', 'the 409 gives the current offset')
      if (status === 412) t.equal(answer.headers['tus-version'], '1.0.0')
      // more of the body, as a client that does not read the answer would send
      await client.tryWrite(data.subarray(1000 + 256 * 1024, 1000 + 512 * 1024))
      await client.waitClosed()
      t.pass('the server closed the connection')
      t.equal((await stat(partPath)).size, 1000, 'the .part file did not grow')
      const head = await app.inject({ method: 'HEAD', url: path, headers: { ...auth, 'tus-resumable': '1.0.0' } })
      t.equal(head.headers['upload-offset'], '1000', 'HEAD still reports 1000')
    })
  }
  t.equal(done.length, 0)
})

t.test('a chunked PATCH longer than Upload-Length keeps the bytes up to the length and is a 413', async (t) => {
  const upload = await setup(t, 300_000, 'exact.bin')
  const { port, path, data } = upload
  const sent = Buffer.concat([data, seededBytes(50_000, 99)])
  const client = await RawClient.open(t, port)
  await client.write(requestHead('PATCH', path, patchHeaders(0, { 'transfer-encoding': 'chunked' })))
  for (let start = 0; start < sent.length; start += 65_536) {
    await client.tryWrite(chunk(sent.subarray(start, start + 65_536)))
  }
  await client.tryWrite(LAST_CHUNK)
  const answer = await client.response()
  t.equal(answer.status, 413, 'the body past Upload-Length is refused')
  t.equal(JSON.parse(answer.body).code, 'FST_TUS_TOO_LARGE')
  t.equal(answer.headers['upload-offset'], String(data.length), 'the 413 says the upload is at its length')
  await checkCompleted(t, upload, 'exact.bin')
})

t.test('DELETE ends a stalled PATCH at once and removes the upload', async (t) => {
  const upload = await setup(t, 2 * 1024 * 1024, 'deleted.bin')
  const { app, dir, port, path, data } = upload
  const K = 500_000
  const stalled = await RawClient.open(t, port)
  await stalled.write(requestHead('PATCH', path, patchHeaders(0, { 'content-length': String(data.length) })))
  await stalled.write(data.subarray(0, K))
  await offsetReaches(app, path, K)

  const started = Date.now()
  const client = await RawClient.open(t, port)
  await client.write(requestHead('DELETE', path, { 'tus-resumable': '1.0.0' }))
  const deleted = await client.response(1000)
  t.ok(Date.now() - started < 1000, 'DELETE did not wait for the stalled PATCH')
  t.equal(deleted.status, 204)
  const first = await stalled.response()
  t.equal(first.status, 409)
  t.equal(JSON.parse(first.body).code, 'FST_TUS_INTERRUPTED')
  await stalled.waitClosed()

  t.equal((await headUpload(app, path)).statusCode, 404, 'the upload is gone')
  t.same((await readdir(join(dir, '.metadata'))).filter((name) => name.includes(uidOf(path)) || name.endsWith('.name')), [],
    'no data, record or name reservation is left')
  t.same((await readdir(dir)).filter((name) => name !== '.metadata'), [], 'no completed file')
  t.equal(upload.done.length, 0)
})

/** Polls HEAD until the offset is `expected` or `timeout` ms have passed; returns the last offset seen. */
async function offsetAfter (app: FastifyInstance, path: string, expected: number, timeout: number): Promise<number> {
  let offset = await offsetOf(app, path)
  const deadline = Date.now() + timeout
  while (offset !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    offset = await offsetOf(app, path)
  }
  return offset
}

// The bytes of a short body that reach the server together with the end of the
// connection, before the handler reads the body, are received: Node holds them in
// the request stream (request.readableLength), readable even after the stream is
// destroyed. PROTOCOL.md: "client disconnects mid-body: every byte received is
// kept; the offset moves by exactly that much".
t.test('a few body bytes followed at once by the end of the connection are kept', async (t) => {
  const K = 10_000
  for (const guard of [false, true]) {
    await t.test(guard ? 'with a guard that takes a moment' : 'without a guard', async (t) => {
      const done: unknown[] = []
      const { app, port } = await startServer(t, {
        // an auth lookup that is still running when the connection ends
        onRequest: async (request) => {
          const { socket } = request.raw
          if (request.headers['x-slow-guard'] === '1' && !socket.destroyed) await new Promise((resolve) => socket.once('close', resolve))
        },
        onUploadDone: () => { done.push(true) }
      })
      const data = seededBytes(100_000, 21)
      const { path } = await createUpload(app, { 'upload-length': String(data.length) })
      const client = await RawClient.open(t, port)
      await client.write(Buffer.concat([
        Buffer.from(requestHead('PATCH', path, patchHeaders(0, { 'content-length': String(data.length), 'x-slow-guard': guard ? '1' : '0' }))),
        data.subarray(0, K)
      ]))
      client.socket.destroy()
      await client.waitClosed()
      const offset = await offsetAfter(app, path, K, 1000)
      t.equal(offset, K, `HEAD reports the bytes that reached the server (it reports ${offset})`)
      const rest = await sendPatch(t, port, path, offset, data.subarray(offset))
      t.equal(rest.status, 204, 'the upload completes from the reported offset')
      t.equal(done.length, 1)
    })
  }
})
