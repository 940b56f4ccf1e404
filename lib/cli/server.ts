import { mkdir } from 'node:fs/promises'
import cors from '@fastify/cors'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyTus from '../index.js'
import { fastifyTusPage } from '../page/index.js'
import { corsAllowedHeaders, corsExposedHeaders, corsMethods } from '../protocol/headers.js'
import type { ServerSettings } from './command-line.js'

/** Where the logs go: standard output by default; tests pass a stream of their own. */
export interface LogDestination {
  readonly stream?: NodeJS.WritableStream
}

/**
 * The standalone server: the plugin on `settings.basePath` storing in
 * `settings.dir`, CORS for the origins given, the upload page at `/`, and a
 * pino log line for each step of an upload's life. Not listening yet.
 */
export async function buildServer (settings: ServerSettings, { stream }: LogDestination = {}): Promise<FastifyInstance> {
  await mkdir(settings.dir, { recursive: true })
  const app = Fastify({
    logger: { level: settings.logLevel, ...(stream === undefined ? {} : { stream }) },
    trustProxy: settings.trustProxy,
    forceCloseConnections: 'idle'
  })
  if (settings.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: settings.corsOrigins.includes('*') ? '*' : [...settings.corsOrigins],
      methods: [...corsMethods],
      allowedHeaders: [...corsAllowedHeaders],
      exposedHeaders: [...corsExposedHeaders],
      maxAge: 86_400
    })
  }
  await app.register(fastifyTus, {
    uploadPath: settings.dir,
    uploadUrl: settings.basePath,
    maxSize: settings.maxSize,
    expiration: settings.expiration,
    cleanupInterval: settings.cleanupInterval,
    locker: settings.locker,
    onUploadCreate: (request, resource) => {
      request.log.info({ upload: resource.uid, fileName: resource.fileName, size: resource.fileSize, metadata: resource.metadata }, 'upload created')
    },
    onUploadProgress: (request, resource) => {
      request.log.debug({ upload: resource.uid, offset: resource.offset, size: resource.fileSize }, 'upload progress')
    },
    onUploadDone: (request, resource, filePath) => {
      request.log.info({ upload: resource.uid, fileName: resource.fileName, size: resource.fileSize, filePath }, 'upload completed')
    },
    onUploadTerminate: (request, resource) => {
      request.log.info({ upload: resource.uid, fileName: resource.fileName, offset: resource.offset }, 'upload terminated')
    }
  })
  if (settings.page) await app.register(fastifyTusPage, { endpoint: settings.basePath })
  app.addHook('onClose', async () => {
    app.log.info('closed: uploads that were interrupted keep their bytes and resume')
  })
  return app
}
