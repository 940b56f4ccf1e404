// The baseline: a bare Fastify 5 server that pipes a PATCH body to a file.
//   node benchmarks/servers/raw.js <upload directory>
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import Fastify from 'fastify'
import { serve, uploadDirectory } from './serve.js'

const dir = uploadDirectory()
const app = Fastify({ logger: false })

// The body reaches the handler as the unread request stream.
app.addContentTypeParser('application/offset+octet-stream', (request, payload, done) => done(null, payload))

app.patch('/raw/:name', {
  schema: {
    params: {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^[A-Za-z0-9-]+\\.bin$' } },
      required: ['name']
    }
  }
}, async (request, reply) => {
  await pipeline(request.body, createWriteStream(join(dir, request.params.name)))
  reply.code(204).send()
  return reply
})

await serve(app)
