import { createReadStream } from 'node:fs'
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { uploadPage, type UploadPageOptions } from './upload-page.js'

export { uploadPage, type UploadPageOptions } from './upload-page.js'

export interface FastifyTusPageOptions extends Omit<UploadPageOptions, 'clientScript'> {
  /** Where the page is served. Default `/`; tus-js-client's bundle is served beside it (`/tus.min.js`). */
  readonly path?: string
}

/** The browser bundle of tus-js-client that the page loads. */
export const tusClientScriptPath: string = createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js')

async function fastifyTusPagePlugin (app: FastifyInstance, { path = '/', ...options }: FastifyTusPageOptions): Promise<void> {
  const script = `${path.endsWith('/') ? path : `${path}/`}tus.min.js`
  const html = uploadPage({ ...options, clientScript: script })
  app.get(path, (request, reply) => {
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html)
  })
  app.get(script, (request, reply) => {
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(createReadStream(tusClientScriptPath))
  })
}

/** Serves the upload page (and the tus client it runs on) in a Fastify app: `app.register(fastifyTusPage, { endpoint: '/files' })`. */
export const fastifyTusPage = fp(fastifyTusPagePlugin, { fastify: '5.x', name: 'fastify-tus-page' })
export default fastifyTusPage
