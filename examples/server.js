// A tus server on port 1080 storing uploads under ./uploads:
//   npm start
// then upload with any tus client to http://localhost:1080/files/
import { mkdir } from 'node:fs/promises'
import Fastify from 'fastify'
import tus from 'fastify-tus'

const port = Number(process.env.PORT ?? 1080)
const host = process.env.HOST ?? '127.0.0.1'
const uploadPath = process.env.UPLOAD_DIR ?? './uploads'

await mkdir(uploadPath, { recursive: true })
const app = Fastify({ logger: true })
await app.register(tus, {
  uploadPath,
  uploadUrl: '/files',
  onUploadDone: async (request, resource, filePath) => {
    request.log.info({ uid: resource.uid, size: resource.fileSize, filePath }, 'upload complete')
  }
})
await app.listen({ port, host })
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
