import { spawnSync } from 'node:child_process'
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileLocker } from '../lib/index.js'

/** Two lockers that share only the file system: as two processes would. */
const pair = (options = { pollInterval: 10, heartbeat: 50, staleAfter: 1000 }): [FileLocker, FileLocker] => [new FileLocker(options), new FileLocker(options)]

t.test('a lock is a directory with its owner, gone on release', async (t) => {
  const dir = t.testdir()
  const key = join(dir, 'a.lock')
  const [locker] = pair()
  const lock = await locker.acquire(key)
  t.match(JSON.parse(await readFile(join(key, 'owner'), 'utf8')), { host: hostname(), pid: process.pid })
  await lock.release()
  t.same(await readdir(dir), [], 'released: the directory and its moved-aside copy are gone')
})

t.test('no directory yet (a creation): the lock of this process alone, no file', async (t) => {
  const key = join(t.testdir(), 'missing', 'a.lock')
  const [locker] = pair()
  const lock = await locker.acquire(key)
  await t.rejects(stat(key))
  lock.release()
  const tried = await locker.tryAcquire(key)
  t.ok(tried)
  tried?.release()
})

t.test('a waiter in the same process asks the holder to stop at once, and gets the lock on its release', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const [locker] = pair()
  const holder = await locker.acquire(key)
  let granted = false
  const next = locker.acquire(key).then((lock) => { granted = true; return lock })
  t.ok(holder.signal.aborted, 'asked without a poll')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.notOk(granted, 'not before the holder lets go')
  await holder.release()
  const taken = await next
  t.notOk(taken.signal.aborted)
  t.match(JSON.parse(await readFile(join(key, 'owner'), 'utf8')), { pid: process.pid })
  await taken.release()
})

t.test('a waiter in another process asks the holder to stop, and gets the lock within a few polls', async (t) => {
  const dir = t.testdir()
  const key = join(dir, 'a.lock')
  const [one, two] = pair()
  const holder = await one.acquire(key)
  holder.signal.addEventListener('abort', () => { holder.release() })
  const started = Date.now()
  const taken = await two.acquire(key)
  const waited = Date.now() - started
  t.ok(holder.signal.aborted, 'the holder was asked')
  t.ok(waited < 500, `handover in ${waited} ms`)
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).pid, process.pid)
  taken.release()
  await waitGone(key)
  // the holder's lock held the waiter's `wanted` file when it was let go: it went all the same
  await waitFor(async () => (await readdir(dir)).length === 0)
  t.same(await readdir(dir), [], 'both locks and their moved-aside copies are gone')
})

t.test('one locker watches every lock it holds: letting one go leaves the others watched, and a lock taken after all were let go is watched again', { timeout: 10_000 }, async (t) => {
  const dir = t.testdir()
  const a = join(dir, 'a.lock')
  const b = join(dir, 'b.lock')
  const c = join(dir, 'c.lock')
  const [one, two] = pair()
  const handOver = (lock: Awaited<ReturnType<FileLocker['acquire']>>): void => {
    lock.signal.addEventListener('abort', () => { lock.release() })
  }
  const heldA = await one.acquire(a)
  const heldB = await one.acquire(b)
  handOver(heldB)
  const old = new Date(Date.now() - 10_000)
  await Promise.all([utimes(a, old, old), utimes(b, old, old)])
  await waitFor(async () => (await Promise.all([stat(a), stat(b)])).every(({ mtimeMs }) => mtimeMs > Date.now() - 5000))
  t.pass('the heartbeat touched both')
  await heldA.release()
  const takenB = await two.acquire(b)
  t.ok(heldB.signal.aborted, 'the lock still held was asked for and handed over')
  await takenB.release()
  await waitGone(b)

  const heldC = await one.acquire(c)
  handOver(heldC)
  const takenC = await two.acquire(c)
  t.ok(heldC.signal.aborted, 'the lock taken after all were let go was asked for and handed over')
  await takenC.release()
  await waitGone(c)
})

t.test('a newer request in the waiting process overtakes the waiter, which never gets the lock', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const [one, two] = pair()
  const holder = await one.acquire(key)
  const overtaken = two.acquire(key)
  await new Promise((resolve) => setTimeout(resolve, 30))
  const newest = two.acquire(key)
  await t.rejects(overtaken, { code: 'FST_TUS_INTERRUPTED' })
  holder.release()
  const lock = await newest
  t.notOk(lock.signal.aborted)
  lock.release()
  await waitGone(key)
})

t.test('a holder marks its lock alive; one not marked for staleAfter is taken over', async (t) => {
  const dir = t.testdir()
  const key = join(dir, 'a.lock')
  const [one, two] = pair()
  const holder = await one.acquire(key)
  const old = new Date(Date.now() - 10_000)
  await utimes(key, old, old)
  await waitFor(async () => (await stat(key)).mtimeMs > Date.now() - 5000)
  t.pass('the heartbeat touched it')
  holder.release()
  await waitGone(key)

  await mkdir(key)
  await writeFile(join(key, 'owner'), JSON.stringify({ host: 'another-host', pid: 1, token: 'x' }))
  await utimes(key, old, old)
  const taken = await two.acquire(key)
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).host, hostname(), 'a holder gone silent is taken over')
  taken.release()
  await waitGone(key)
  t.same((await readdir(dir)).filter((name) => name.includes('stale')), [], 'the stale lock was removed')
})

t.test('the lock of a process of this host that no longer exists is taken over at once', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const dead = spawnSync(process.execPath, ['-e', '0']).pid as number
  await mkdir(key)
  await writeFile(join(key, 'owner'), JSON.stringify({ host: hostname(), pid: dead, token: 'x' }))
  const [locker] = pair({ pollInterval: 10, heartbeat: 50, staleAfter: 60_000 })
  const started = Date.now()
  const lock = await locker.acquire(key)
  t.ok(Date.now() - started < 1000)
  lock.release()
  await waitGone(key)
})

t.test('tryAcquire takes a free or stale lock and leaves a live holder alone', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const [one, two] = pair()
  const holder = await one.acquire(key)
  t.equal(await two.tryAcquire(key), undefined)
  t.notOk(holder.signal.aborted)
  t.equal(await one.tryAcquire(key), undefined, 'nor within its own process')
  holder.release()
  await waitGone(key)
  const free = await two.tryAcquire(key)
  t.ok(free)
  free?.release()
  await waitGone(key)
  await mkdir(key)
  await writeFile(join(key, 'owner'), JSON.stringify({ host: 'another-host', pid: 1, token: 'x' }))
  const old = new Date(Date.now() - 10_000)
  await utimes(key, old, old)
  const stale = await one.tryAcquire(key)
  t.ok(stale, 'a stale lock is no holder')
  stale?.release()
  await waitGone(key)
})

t.test('a lock that cannot be made for another reason than "held" is an error, and frees the process lock', async (t) => {
  const dir = t.testdir()
  await writeFile(join(dir, 'file'), '')
  const key = join(dir, 'file', 'a.lock')
  const [locker] = pair()
  await t.rejects(locker.acquire(key), { code: 'ENOTDIR' })
  await t.rejects(locker.acquire(key), { code: 'ENOTDIR' }, 'not blocked by the first try')
})

t.test('a holder taken for gone does not remove the lock of the one that took over', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const [one, two] = pair()
  const first = await one.acquire(key)
  await writeFile(join(key, 'owner'), JSON.stringify({ host: 'elsewhere', pid: 1, token: 'someone-else' }))
  first.release()
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).token, 'someone-else', 'still there')
  t.equal(await two.tryAcquire(key), undefined)
})

async function waitFor (condition: () => Promise<boolean>, timeout = 3000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!await condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const waitGone = (path: string): Promise<void> => waitFor(() => stat(path).then(() => false, () => true))

t.test('two servers on one directory, each with its own file locker: a PATCH on one takes over a stalled PATCH on the other', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: tus } = await import('../lib/index.js')
  const { PassThrough } = await import('node:stream')
  const { TUS, OCTET, createUpload, headUpload, patchUpload, uidOf } = await import('./helpers.js')
  const dir = t.testdir()
  const servers = [Fastify(), Fastify()]
  for (const server of servers) {
    await server.register(tus, { uploadPath: dir, locker: new FileLocker({ pollInterval: 10 }) })
    t.teardown(() => server.close())
  }
  const [one, two] = servers as [typeof servers[0], typeof servers[0]]
  const { path } = await createUpload(one, { 'upload-length': '10', 'upload-metadata': 'filename c2hhcmVkLnR4dA==' })
  const body = new PassThrough()
  const stalled = one.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'transfer-encoding': 'chunked' }, payload: body })
  body.write('abc')
  await waitFor(async () => (await headUpload(two, path)).headers['upload-offset'] === '3')
  t.ok((await readdir(join(dir, '.metadata'))).includes(`${uidOf(path)}.lock`), 'the PATCH holds the lock on disk')
  const started = Date.now()
  const taken = await patchUpload(two, path, 3, 'defghij')
  t.equal(taken.statusCode, 204)
  t.ok(Date.now() - started < 1000, `taken over in ${Date.now() - started} ms`)
  t.equal((await stalled).statusCode, 409)
  t.equal(await readFile(join(dir, 'shared.txt'), 'utf8'), 'abcdefghij')
  await waitFor(async () => !(await readdir(join(dir, '.metadata'))).some((name) => name.includes('.lock')))
  t.pass('no lock left behind')
})

t.test('a lock whose holder died before naming itself is taken over after a short grace', async (t) => {
  const key = join(t.testdir(), 'a.lock')
  const [locker] = pair({ pollInterval: 10, heartbeat: 50, staleAfter: 60_000 })
  await mkdir(key)
  t.equal(await locker.tryAcquire(key), undefined, 'a young nameless lock may be a holder about to name itself')
  const old = new Date(Date.now() - 3000)
  await utimes(key, old, old)
  const lock = await locker.acquire(key)
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).pid, process.pid)
  lock.release()
  await waitGone(key)

  await mkdir(key)
  await writeFile(join(key, 'owner'), '') // a name begun, not written: as nameless
  t.equal(await locker.tryAcquire(key), undefined)
  await utimes(key, old, old)
  const taken = await locker.acquire(key)
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).pid, process.pid, 'an unreadable name is no holder once the grace is over')
  taken.release()
  await waitGone(key)
})

t.test('removing a stale lock puts back a live one made in its place meanwhile', async (t) => {
  const { removeStale } = await import('../lib/lock/file-locker.js')
  const dir = t.testdir()
  const key = join(dir, 'a.lock')
  await mkdir(key)
  await writeFile(join(key, 'owner'), JSON.stringify({ host: 'h', pid: 1, token: 'fresh' }))
  await removeStale(key, 'stale', { host: 'h', pid: 2, token: 'me' })
  t.equal(JSON.parse(await readFile(join(key, 'owner'), 'utf8')).token, 'fresh', 'the live lock is back')
  await removeStale(key, 'fresh', { host: 'h', pid: 2, token: 'me' })
  t.same(await readdir(dir), [], 'a stale one goes')
  await removeStale(key, 'gone', { host: 'h', pid: 2, token: 'me' })
  t.same(await readdir(dir), [], 'nothing to remove is nothing to do')
})

t.test('a lock that is gone by the time it is looked at is no stale lock: try again', async (t) => {
  const { symlink } = await import('node:fs/promises')
  const key = join(t.testdir(), 'a.lock')
  await symlink(join(t.testdir(), 'nowhere'), key) // mkdir finds it there, stat does not
  const [locker] = pair()
  t.equal(await locker.tryAcquire(key), undefined)
})
