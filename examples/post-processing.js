// Work on each completed file in `onUploadDone`: here it is checksummed and
// moved into permanent storage under its upload id, and the result recorded.
// The hook runs once the file is in its final place, before the last PATCH is
// answered: a slow step belongs in a queue, not here.
//   node examples/post-processing.js
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { appendFile, mkdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import Fastify from 'fastify'
import tus from 'fastify-tus'

const root = process.env.UPLOAD_DIR ?? './uploads'
const storage = join(root, 'storage')
await mkdir(storage, { recursive: true })

const app = Fastify({ logger: true })
await app.register(tus, {
  uploadPath: join(root, 'incoming'),
  uploadUrl: '/files',
  onUploadDone: async (request, resource, filePath) => {
    const hash = createHash('sha256')
    await pipeline(createReadStream(filePath), hash)
    const stored = join(storage, `${resource.uid}-${resource.fileName}`)
    await rename(filePath, stored)
    const entry = { uid: resource.uid, name: resource.fileName, size: resource.fileSize, sha256: hash.digest('hex'), stored }
    await appendFile(join(storage, 'index.jsonl'), `${JSON.stringify(entry)}\n`)
    request.log.info(entry, 'stored')
  }
})
await app.listen({ port: Number(process.env.PORT ?? 1080), host: process.env.HOST ?? '127.0.0.1' })
