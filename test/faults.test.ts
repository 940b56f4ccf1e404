import { spawn } from 'node:child_process'
import { readFile, stat, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import tus from '../lib/index.js'
import { OCTET, TUS, buildApp, createUpload, encodeMetadata, headUpload, patchUpload, seededBytes, uidOf } from './helpers.js'
import { RawClient, patchHead, requestHead } from './raw-client.js'
import { startServer, waitFor, within } from './server.js'

t.test('a body that stalls is ended after idleTimeout (408), its bytes kept; the upload resumes', async (t) => {
  const { app, dir, port } = await startServer(t, { idleTimeout: 150 })
  const data = seededBytes(100_000, 9)
  const { path } = await createUpload(app, { 'upload-length': String(data.length), 'upload-metadata': encodeMetadata({ filename: 'stalled.bin' }) })
  const client = await RawClient.open(t, port)
  await client.write(patchHead(path, 0, data.length))
  await client.write(data.subarray(0, 30_000))
  const started = Date.now()
  const answer = await client.response(5000)
  t.equal(answer.status, 408)
  t.equal(JSON.parse(answer.body).code, 'FST_TUS_IDLE_TIMEOUT')
  t.equal(answer.headers.connection, 'close')
  t.ok(Date.now() - started >= 100, 'not before the timeout')
  await client.waitClosed()
  t.equal((await headUpload(app, path)).headers['upload-offset'], '30000')
  t.equal((await patchUpload(app, path, 30_000, data.subarray(30_000))).statusCode, 204)
  t.same(await readFile(join(dir, 'stalled.bin')), data)
})

t.test('app.close() ends the bodies still streaming (503), keeps their bytes, and a restart resumes them', async (t) => {
  const dir = t.testdir()
  const first = Fastify({ forceCloseConnections: true })
  await first.register(tus, { uploadPath: dir })
  await first.listen({ port: 0, host: '127.0.0.1' })
  const port = (first.server.address() as { port: number }).port
  const data = seededBytes(200_000, 3)
  const { path } = await createUpload(first, { 'upload-length': String(data.length), 'upload-metadata': encodeMetadata({ filename: 'restarted.bin' }) })
  const client = await RawClient.open(t, port)
  await client.write(patchHead(path, 0, data.length))
  await client.write(data.subarray(0, 50_000))
  await waitFor('the bytes on disk', async () => (await stat(join(dir, '.metadata', `${uidOf(path)}.part`)).catch(() => ({ size: 0 }))).size === 50_000 ? true : undefined)
  const closing = first.close()
  const answer = await client.response(5000)
  t.equal(answer.status, 503)
  t.equal(JSON.parse(answer.body).code, 'FST_TUS_SHUTTING_DOWN')
  await within('the close', closing, 5000)

  const second = Fastify()
  await second.register(tus, { uploadPath: dir })
  t.teardown(() => second.close())
  t.equal((await headUpload(second, path)).headers['upload-offset'], '50000', 'every byte received before the close')
  t.equal((await patchUpload(second, path, 50_000, data.subarray(50_000))).statusCode, 204)
  t.same(await readFile(join(dir, 'restarted.bin')), data)
})

t.test('at most maxConcurrentUploads bodies are written at once; one more is a 503 with Retry-After', async (t) => {
  const { app, port } = await startServer(t, { maxConcurrentUploads: 2 })
  const paths: string[] = []
  for (let index = 0; index < 3; index++) paths.push((await createUpload(app, { 'upload-length': '100' })).path)
  const clients = []
  for (const path of paths.slice(0, 2)) {
    const client = await RawClient.open(t, port)
    await client.write(patchHead(path, 0, 100))
    await client.write('x')
    clients.push(client)
  }
  await waitFor('both bodies to be taken in', async () => {
    const offsets = await Promise.all(paths.slice(0, 2).map(async (path) => (await headUpload(app, path)).headers['upload-offset']))
    return offsets.every((offset) => offset === '1') ? true : undefined
  })
  const refused = await patchUpload(app, paths[2] as string, 0, 'y')
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.json().code, 'FST_TUS_BUSY')
  t.equal((await headUpload(app, paths[2] as string)).statusCode, 200, 'requests without a body are not counted')
  clients[0]?.socket.destroy()
  await waitFor('a slot to be free', async () => (await patchUpload(app, paths[2] as string, 0, 'y')).statusCode === 204 ? true : undefined)
  t.pass('a slot came free when a body ended')
})

t.test('header and metadata size limits: 431 and 400, with a message', async (t) => {
  const { app, port } = await startServer(t, { maxMetadataSize: 64 })
  const big = await createUpload(app, { 'upload-length': '1', 'upload-metadata': encodeMetadata({ filename: 'x'.repeat(60) }) })
  t.equal(big.response.statusCode, 400)
  t.match(big.response.json().message, /Upload-Metadata is larger than 64 bytes/)
  const client = await RawClient.open(t, port)
  await client.write(requestHead('POST', '/uploads', { ...TUS, 'upload-length': '1', 'upload-metadata': `k ${'A'.repeat(20_000)}` }))
  const answer = await client.response()
  t.equal(answer.status, 431)
  t.match(answer.body, /maximum allowed HTTP header size/)
})

t.test('an I/O error while writing is a 500 that says so', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '100000' })
  // a pseudo-terminal whose other side reads 10 bytes and goes away: writes after that fail with EIO
  const terminal = spawn('python3', ['-c', [
    'import os, pty, sys',
    'master, slave = pty.openpty()',
    'os.system("stty raw -echo < " + os.ttyname(slave))',
    'print(os.ttyname(slave), flush=True)',
    'got = 0',
    'while got < 10: got += len(os.read(master, 10 - got))',
    'print("read", flush=True)',
    'sys.stdin.read()',
    'os.close(master)',
    'print("closed", flush=True)'
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { terminal.kill() })
  const lines: string[] = []
  terminal.stdout.setEncoding('utf8').on('data', (text: string) => { lines.push(...text.trim().split('\n')) })
  const device = await waitFor('the terminal', () => lines[0])
  await symlink(device, join(dir, '.metadata', `${uidOf(path)}.part`))
  const { PassThrough } = await import('node:stream')
  const body = new PassThrough()
  const answer = app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  body.write('0123456789')
  await waitFor('the terminal to read', () => lines.includes('read') ? true : undefined)
  terminal.stdin.end()
  await waitFor('the terminal to close', () => lines.includes('closed') ? true : undefined)
  body.write('more')
  body.end()
  const response = await answer
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_TUS_IO_ERROR')
  t.match(response.json().message, /EIO/)
})
