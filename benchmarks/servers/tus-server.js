// @tus/server with @tus/file-store, mounted in Fastify 5 as the @tus/server
// README shows: a content-type parser that leaves the body unread, and routes
// that hand the raw request and response to `server.handle`.
//   node benchmarks/servers/tus-server.js <upload directory>
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'
import Fastify from 'fastify'
import { serve, uploadDirectory } from './serve.js'

const app = Fastify({ logger: false })
const tusServer = new Server({
  path: '/files',
  datastore: new FileStore({ directory: uploadDirectory() })
})

app.addContentTypeParser('application/offset+octet-stream', (request, payload, done) => done(null))
app.all('/files', (req, res) => {
  tusServer.handle(req.raw, res.raw)
})
app.all('/files/*', (req, res) => {
  tusServer.handle(req.raw, res.raw)
})

await serve(app)
