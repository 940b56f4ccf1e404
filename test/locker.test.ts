import t from 'tap'
import { MemoryLocker, stopSignalOf } from '../lib/lock/locker.js'

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

t.test('a body listens to a memory lock without an AbortController: each listener once, as on a signal', async (t) => {
  const locker = new MemoryLocker()
  const holder = await locker.acquire('upload')
  const stop = stopSignalOf(holder)
  t.not(stop, holder.signal, 'not the lock\'s AbortSignal')
  const heard: string[] = []
  const first = (): void => { heard.push('first') }
  const removed = (): void => { heard.push('removed') }
  const removing = (): void => {
    heard.push('removing')
    stop.removeEventListener('abort', removed)
  }
  stop.addEventListener('abort', first, { once: true })
  stop.addEventListener('abort', removing, { once: true })
  stop.addEventListener('abort', removed, { once: true })
  t.notOk(stop.aborted)
  const next = locker.acquire('upload')
  t.same(heard, ['first', 'removing'], 'in the order added; one removed meanwhile is not called')
  t.ok(stop.aborted)
  t.ok(holder.signal.aborted, 'the AbortSignal, made only now, says so too')
  holder.release()
  ;(await next).release()
})

t.test('a lock from another locker is listened to through its AbortSignal', async (t) => {
  const controller = new AbortController()
  const lock = { signal: controller.signal, release () {} }
  t.equal(stopSignalOf(lock), controller.signal)
})
