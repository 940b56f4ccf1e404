import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { lockKey, type TusContext } from './context.js'
import { isBrokenFinal } from './concat.js'
import { isExpired } from './expiration.js'

/** What a cleanup removed. */
export interface CleanupReport {
  /** Expired unfinished uploads. */
  expired: number
  /** Files that interrupted writes left behind. */
  leftovers: number
  /** Uploads that could not be looked at (their error is logged). */
  failed: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Removes the expired unfinished uploads of every tus registration of the
     * app, never a completed file and never an upload being written, and the
     * files that interrupted writes left behind.
     */
    tusCleanup (): Promise<CleanupReport>
  }
}

/** A temporary file older than this was left by a write that died. */
const LEFTOVER_AGE = 60_000

const cleanupsByApp = new WeakMap<object, Array<() => Promise<CleanupReport>>>()

/** Adds a registration to `app.tusCleanup()`, and runs it every `cleanupInterval` if set. */
export function registerCleanup (instance: FastifyInstance, context: TusContext): void {
  let cleanups = cleanupsByApp.get(instance.server)
  if (cleanups === undefined) {
    cleanups = []
    cleanupsByApp.set(instance.server, cleanups)
  }
  const run = (): Promise<CleanupReport> => cleanup(context, instance.log)
  cleanups.push(run)
  if (!instance.hasDecorator('tusCleanup')) instance.decorate('tusCleanup', tusCleanup)

  const { cleanupInterval } = context.options
  if (cleanupInterval !== undefined) schedule(instance, run, cleanupInterval)
}

/** Runs `run` every `interval` ms after the previous run ended (runs never overlap), until the app closes. */
function schedule (instance: FastifyInstance, run: () => Promise<CleanupReport>, interval: number): void {
  let current: Promise<void> = Promise.resolve()
  const tick = (): void => {
    current = run()
      .then(
        (report) => { instance.log.debug({ report }, 'fastify-tus: cleanup done') },
        (error: unknown) => { instance.log.error({ err: error }, 'fastify-tus: cleanup failed') }
      )
      .then(() => { timer = setTimeout(tick, interval).unref() })
  }
  let timer = setTimeout(tick, interval).unref()
  instance.addHook('onClose', async () => {
    clearTimeout(timer)
    await current
    clearTimeout(timer) // a run under way at close has scheduled the next one
  })
}

async function tusCleanup (this: FastifyInstance): Promise<CleanupReport> {
  const total: CleanupReport = { expired: 0, leftovers: 0, failed: 0 }
  for (const run of cleanupsByApp.get(this.server) as Array<() => Promise<CleanupReport>>) {
    const report = await run()
    total.expired += report.expired
    total.leftovers += report.leftovers
    total.failed += report.failed
  }
  return total
}

async function cleanup (context: TusContext, log: FastifyBaseLogger): Promise<CleanupReport> {
  const report: CleanupReport = { expired: 0, leftovers: 0, failed: 0 }
  const now = Date.now()
  for (const directory of await context.options.uploadPath.directories()) {
    if (context.options.expiration !== undefined) {
      for (const uid of await context.store.list(directory)) {
        try {
          if (await expire(context, directory, uid, now)) report.expired++
        } catch (error) {
          report.failed++
          log.warn({ err: error, directory, uid }, 'fastify-tus: cleanup could not look at an upload')
        }
      }
    }
    report.leftovers += await context.store.sweep(directory, now - LEFTOVER_AGE)
  }
  return report
}

/** Removes one upload if it is expired (or a final one whose partials expired) and nobody is writing to it. */
async function expire (context: TusContext, directory: string, uid: string, now: number): Promise<boolean> {
  const lock = await context.locker.tryAcquire(lockKey(directory, uid))
  if (lock === undefined) return false
  try {
    const upload = await context.store.load(directory, uid)
    if (upload === undefined || (!isExpired(context, upload, now) && !await isBrokenFinal(context, directory, upload))) return false
    await context.store.remove(directory, upload.record)
    return true
  } finally {
    await lock.release()
  }
}
