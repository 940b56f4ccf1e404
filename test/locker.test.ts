import t from 'tap'
import { MemoryLocker } from '../lib/lock/locker.js'

t.test('a lock is free at once when nobody holds it, and per key', async (t) => {
  const locker = new MemoryLocker()
  const a = await locker.acquire('a')
  const b = await locker.acquire('b')
  t.notOk(a.signal.aborted)
  t.notOk(b.signal.aborted)
  a.release()
  b.release()
  const again = await locker.acquire('a')
  t.notOk(again.signal.aborted, 'a released lock is not asked to stop again')
  again.release()
})

t.test('taking a held lock asks the holder to stop and waits only for its release', async (t) => {
  const locker = new MemoryLocker()
  const holder = await locker.acquire('upload')
  let granted = false
  const next = locker.acquire('upload').then((lock) => { granted = true; return lock })
  t.ok(holder.signal.aborted, 'the holder is asked to stop')
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(granted, 'not before the holder lets go')
  holder.release()
  const lock = await next
  t.notOk(lock.signal.aborted)
  lock.release()
})

t.test('a waiter overtaken by a newer request never gets the lock; the newest wins', async (t) => {
  const locker = new MemoryLocker()
  const first = await locker.acquire('upload')
  const second = locker.acquire('upload')
  const third = locker.acquire('upload')
  first.release()
  await t.rejects(second, { code: 'FST_TUS_INTERRUPTED' })
  const thirdLock = await third
  t.notOk(thirdLock.signal.aborted)
  first.release()
  const fourth = locker.acquire('upload')
  t.ok(thirdLock.signal.aborted, 'a late release of an old lock does not free the current one')
  thirdLock.release()
  ;(await fourth).release()
})

t.test('tryAcquire never disturbs a holder', async (t) => {
  const locker = new MemoryLocker()
  const held = await locker.acquire('upload')
  t.equal(await locker.tryAcquire('upload'), undefined)
  t.notOk(held.signal.aborted)
  held.release()
  const free = await locker.tryAcquire('upload')
  t.ok(free)
  free?.release()
})
