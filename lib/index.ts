import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { MemoryLocker } from './lock/locker.js'
import { resolveOptions, type FastifyTusOptions } from './options.js'
import { BodyRequests } from './routes/body-requests.js'
import { registerCleanup } from './routes/cleanup.js'
import { tusRoutes } from './routes/register.js'
import { nameRoutes, resourceRouteName } from './routes/reverse.js'
import { FileStore } from './store/file-store.js'

/** How long a closing app waits for the answers to the bodies it ended. */
const CLOSE_TIMEOUT = 5000

/** Uploads served by this process share one locker: a lock is keyed by the upload's directory and id. */
const processLocker = new MemoryLocker()

/**
 * Registers a tus endpoint. The plugin itself is not encapsulated, so that
 * `tusUrlFor` reaches the context it is registered in; its routes, body parser,
 * validator and hooks live in an encapsulated child context of their own.
 */
async function fastifyTusPlugin (instance: FastifyInstance, options: FastifyTusOptions): Promise<void> {
  const resolved = resolveOptions(options, instance.prefix)
  const name = resolved.uploadResourceName ?? `tus:${resolved.creationRoute.url}`
  const closing = new AbortController()
  const bodies = new BodyRequests(resolved.maxConcurrentUploads)
  // before the server stops: end the bodies still streaming, and let their answers (503) go out
  instance.addHook('preClose', async () => {
    closing.abort()
    await bodies.answered(CLOSE_TIMEOUT)
  })
  const context = {
    options: resolved,
    store: new FileStore(resolved),
    locker: processLocker,
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
export type { TusErrorCode } from './errors.js'
export { corsAllowedHeaders, corsExposedHeaders } from './protocol/headers.js'
