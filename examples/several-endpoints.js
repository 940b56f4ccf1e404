// Several tus endpoints in one app, each with its own directory and rules:
// images up to 10 MB, videos of any size that expire after a day unfinished.
//   node examples/several-endpoints.js
import Fastify from 'fastify'
import tus from 'fastify-tus'

const root = process.env.UPLOAD_DIR ?? './uploads'
const app = Fastify({ logger: true })
await app.register(tus, {
  uploadUrl: '/images',
  uploadPath: `${root}/images`,
  maxSize: 10_000_000,
  onUploadCreate: (request, resource) => {
    if (!/^image\//.test(resource.metadata.filetype ?? '')) {
      throw Object.assign(new Error('only images here: set the filetype metadata to image/*'), { statusCode: 415 })
    }
  }
})
await app.register(tus, {
  uploadUrl: '/videos',
  uploadPath: `${root}/videos`,
  expiration: 24 * 60 * 60 * 1000,
  cleanupInterval: 60 * 60 * 1000
})
await app.listen({ port: Number(process.env.PORT ?? 1080), host: process.env.HOST ?? '127.0.0.1' })
