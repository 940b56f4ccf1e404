import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { appendStream, unwritten } from '../lib/store/append-stream.js'

async function withFile (t: Test, run: (fd: number) => Promise<void>): Promise<string> {
  const path = join(t.testdir(), 'data')
  const handle = await open(path, 'a')
  try {
    await run(handle.fd)
  } finally {
    await handle.close()
  }
  return readFile(path, 'utf8')
}

t.test('writes a stream to the end of the file and says why it stopped', async (t) => {
  const content = await withFile(t, async (fd) => {
    t.same(await appendStream(fd, Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { limit: 10, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 4, end: 'ended' })
    t.same(await appendStream(fd, Readable.from([Buffer.from('efgh')]), { limit: 2, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 2, end: 'limit' })
    t.same(await appendStream(fd, Readable.from([Buffer.from('x')]), { limit: 0, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 0, end: 'limit' })
  })
  t.equal(content, 'abcdef')
})

t.test('an aborted signal or a destroyed source stops it before a byte', async (t) => {
  const content = await withFile(t, async (fd) => {
    t.same(await appendStream(fd, Readable.from([Buffer.from('ab')]), { limit: 10, signals: [AbortSignal.abort()], idleTimeout: 60_000 }), { written: 0, end: 'interrupted' })
    t.same(await appendStream(fd, Readable.from([Buffer.from('ab')]), { limit: 10, signals: [new AbortController().signal, AbortSignal.abort()], idleTimeout: 60_000 }), { written: 0, end: 'interrupted' }, 'any of its signals')
    const destroyed = new PassThrough()
    destroyed.destroy()
    t.same(await appendStream(fd, destroyed, { limit: 10, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 0, end: 'broke' })
  })
  t.equal(content, '')
})

t.test('bytes left in the buffer of a source destroyed before or while paused are kept', async (t) => {
  const content = await withFile(t, async (fd) => {
    const early = new PassThrough()
    early.write('abc')
    early.destroy()
    t.same(await appendStream(fd, early, { limit: 10, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 3, end: 'broke' })
    const cut = new PassThrough()
    cut.write('defghij')
    cut.destroy()
    t.same(await appendStream(fd, cut, { limit: 4, signals: [new AbortController().signal], idleTimeout: 60_000 }), { written: 4, end: 'limit' }, 'up to the limit')
  })
  t.equal(content, 'abcdefg')
})

t.test('bytes received before an interruption or a broken source are written', async (t) => {
  const content = await withFile(t, async (fd) => {
    const controller = new AbortController()
    const body = new PassThrough()
    const appending = appendStream(fd, body, { limit: 100, signals: [new AbortController().signal, controller.signal], idleTimeout: 60_000 })
    body.write('abc')
    await new Promise((resolve) => setImmediate(resolve))
    controller.abort()
    t.same(await appending, { written: 3, end: 'interrupted' })
    const broken = new PassThrough()
    const breaking = appendStream(fd, broken, { limit: 100, signals: [new AbortController().signal], idleTimeout: 60_000 })
    broken.write('def')
    await new Promise((resolve) => setImmediate(resolve))
    broken.destroy(new Error('ECONNRESET'))
    t.same(await breaking, { written: 3, end: 'broke' })
  })
  t.equal(content, 'abcdef')
})

t.test('many chunks arriving during a write are batched, and the source is paused when too much waits', async (t) => {
  const chunk = Buffer.alloc(256 * 1024, 'z')
  const chunks = Array.from({ length: 64 }, () => chunk)
  const content = await withFile(t, async (fd) => {
    const result = await appendStream(fd, Readable.from(chunks, { objectMode: false, highWaterMark: 16 * 1024 * 1024 }), { limit: Infinity, signals: [new AbortController().signal], idleTimeout: 60_000 })
    t.same(result, { written: 64 * chunk.length, end: 'ended' })
  })
  t.equal(content.length, 64 * chunk.length)
})

t.test('a slow body reaches the disk chunk by chunk, a fast one in batches with the source paused while too much waits', async (t) => {
  const path = join(t.testdir(), 'data')
  const handle = await open(path, 'a')
  t.teardown(() => handle.close())
  const body = new PassThrough()
  const appending = appendStream(handle.fd, body, { limit: Infinity, signals: [new AbortController().signal], idleTimeout: 60_000 })
  body.write('slow')
  for (let waited = 0; (await readFile(path, 'utf8')) !== 'slow'; waited += 10) {
    if (waited > 5000) throw new Error('a small chunk was not written while the body went on')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const chunk = Buffer.alloc(256 * 1024, 'f')
  let paused = false
  body.on('pause', () => { paused = true })
  for (let index = 0; index < 16; index++) body.write(chunk)
  t.ok(paused, 'paused while a write was in flight and more than two batches waited')
  body.end()
  t.same(await appending, { written: 4 + 16 * chunk.length, end: 'ended' })
  t.equal((await readFile(path)).length, 4 + 16 * chunk.length)
})

t.test('a write error rejects', async (t) => {
  const path = join(t.testdir(), 'read-only')
  await (await open(path, 'w')).close()
  const handle = await open(path, 'r')
  t.teardown(() => handle.close())
  await t.rejects(appendStream(handle.fd, Readable.from([Buffer.from('a')]), { limit: 10, signals: [new AbortController().signal], idleTimeout: 60_000 }), { code: 'EBADF' })
})

t.test('after a short write the rest of the batch is what remains', async (t) => {
  const batch = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('f')]
  t.same(unwritten(batch, 6), [])
  t.same(unwritten(batch, 0).map(String), ['abc', 'de', 'f'])
  t.same(unwritten(batch, 2).map(String), ['c', 'de', 'f'])
  t.same(unwritten(batch, 3).map(String), ['de', 'f'])
  t.same(unwritten(batch, 4).map(String), ['e', 'f'])
})

t.test('a body that sends nothing for the idle timeout is stopped, its bytes kept', async (t) => {
  const content = await withFile(t, async (fd) => {
    const stalled = new PassThrough()
    const appending = appendStream(fd, stalled, { limit: 100, signals: [new AbortController().signal], idleTimeout: 50 })
    stalled.write('ab')
    await new Promise((resolve) => setTimeout(resolve, 30))
    stalled.write('cd')
    const started = Date.now()
    t.same(await appending, { written: 4, end: 'idle' })
    t.ok(Date.now() - started >= 45, 'the clock restarted with the last chunk')
  })
  t.equal(content, 'abcd')
})

t.test('time spent waiting for the disk does not count as the client being idle', async (t) => {
  const { constants } = await import('node:fs')
  const { execFileSync } = await import('node:child_process')
  const fifo = join(t.testdir(), 'slow-disk')
  execFileSync('mkfifo', [fifo])
  const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const writer = await open(fifo, constants.O_WRONLY)
  t.teardown(async () => { await reader.close(); await writer.close() })
  const size = 1024 * 1024 // a whole batch: its write starts at once
  const body = new PassThrough()
  let settled = false
  const appending = appendStream(writer.fd, body, { limit: Infinity, signals: [new AbortController().signal], idleTimeout: 20 }).finally(() => { settled = true })
  body.write(Buffer.alloc(size, 1)) // more than a pipe holds: the write waits for the reader
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.notOk(settled, 'still writing after many idle timeouts')
  const chunk = Buffer.alloc(64 * 1024)
  for (let drained = 0; drained < size;) {
    const { bytesRead } = await reader.read(chunk, 0, chunk.length).catch(() => ({ bytesRead: 0 }))
    drained += bytesRead
    if (bytesRead === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  body.end()
  t.same(await appending, { written: size, end: 'ended' })
})
