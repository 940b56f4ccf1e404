import { setMaxListeners } from 'node:events'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { FileLocker } from './lock/file-locker.js'
import { MemoryLocker } from './lock/locker.js'
import { resolveOptions, type FastifyTusOptions } from './options.js'
import { BodyRequests } from './routes/body-requests.js'
import { registerCleanup } from './routes/cleanup.js'
import { tusRoutes } from './routes/register.js'
import { nameRoutes, resourceRouteName } from './routes/reverse.js'
import { FileStore } from './store/file-store.js'

/** How long a closing app waits for the answers to the bodies it ended. */
const CLOSE_TIMEOUT = 5000

/** Registrations of this process share their locker, so that two sharing a directory share its locks. */
const processLockers = { memory: new MemoryLocker(), file: new FileLocker() }

/**
 * Registers a tus endpoint. The plugin itself is not encapsulated, so that
 * `tusUrlFor` reaches the context it is registered in; its routes, body parser,
 * validator and hooks live in an encapsulated child context of their own.
 */
async function fastifyTusPlugin (instance: FastifyInstance, options: FastifyTusOptions): Promise<void> {
  const resolved = resolveOptions(options, instance.prefix)
  const name = resolved.uploadResourceName ?? `tus:${resolved.creationRoute.url}`
  const closing = new AbortController()
  // every body being written listens to it (and stops listening when done): no warning past ten
  setMaxListeners(0, closing.signal)
  const bodies = new BodyRequests(resolved.maxConcurrentUploads)
  // before the server stops: end the bodies still streaming, and let their answers (503) go out
  instance.addHook('preClose', async () => {
    closing.abort()
    await bodies.answered(CLOSE_TIMEOUT)
  })
  const context = {
    options: resolved,
    store: new FileStore(resolved),
    locker: typeof resolved.locker === 'string' ? processLockers[resolved.locker] : resolved.locker,
    resourceRoute: nameRoutes(instance, name, resolved.creationRoute),
    resourceRouteName: resourceRouteName(name),
    closing: closing.signal,
    bodies
  }
  registerCleanup(instance, context)
  await instance.register(tusRoutes(context))
}

export const fastifyTus = fp(fastifyTusPlugin, { fastify: '5.x', name: 'fastify-tus' })
export default fastifyTus

export type { FastifyTusOptions } from './options.js'
export type { Resource, CompletedResource } from './resource.js'
export type { CleanupReport } from './routes/cleanup.js'
export type { UploadMetadata } from './protocol/metadata.js'
export { errors } from './errors.js'
export { MemoryLocker, type Lock, type Locker } from './lock/locker.js'
export { FileLocker, type FileLockerOptions } from './lock/file-locker.js'
export type { TusErrorCode } from './errors.js'
export { corsAllowedHeaders, corsExposedHeaders, corsMethods } from './protocol/headers.js'
