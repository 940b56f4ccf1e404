// The physical limit for a Fastify app: a minimal Fastify 5 server speaking the
// raw protocol of raw-protocol.js (no tus: no offsets checked, no records, no
// locks). A POST creates an empty file, a HEAD stats one, a PATCH appends its
// body with fs.writev in batches of about 1 MiB.
//   node benchmarks/servers/raw.js <upload directory> [write|discard|durable] [<dist directory>]
// With `discard` (the raw-discard target) a PATCH body is read and dropped: the
// cost of HTTP parsing alone. With `durable` (the raw-durable target) a POST
// writes a record through a temporary file and a rename, and a HEAD or PATCH
// checks it (a stat, a read only when its file changed) beside the data file's
// size (a HEAD of an upload it appended to last: that size alone), a PATCH
// opening the data file at the same time and holding Upload-Offset against that
// size: the least file work of a crash-safe tus server. Its POST and HEAD answer
// through Fastify's reply, as a plugin's must (raw's take the socket over:
// reply.hijack()).
// With a dist directory (the raw-loaded target) the plugin is also registered,
// on a prefix nobody calls: the same raw PATCH in a process whose heap holds
// what the plugin's does, so that the difference from raw is what a larger
// heap costs the garbage collector while bodies stream.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { RAW_NAME, appendBody, createFile, createRecord, discardBody, openForAppend, openRecorded, statFile, statWithRecord } from './raw-protocol.js'
import { serve, uploadDirectory } from './serve.js'

const dir = uploadDirectory()
const mode = process.argv[3] ?? 'write'
const discard = mode === 'discard'
const durable = mode === 'durable'
const dist = process.argv[4]
const app = Fastify({ logger: false })
if (dist !== undefined) {
  const { default: tus } = await import(pathToFileURL(join(dist, 'index.js')).href)
  await app.register(tus, { uploadPath: join(dir, '.unused'), uploadUrl: '/unused' })
}

// the body stays unread in the request stream, for the handler
app.addContentTypeParser('*', (request, payload, done) => done(null))

const params = {
  type: 'object',
  properties: { name: { type: 'string', pattern: RAW_NAME.source } },
  required: ['name']
}

app.post('/raw', (request, reply) => {
  if (durable) return createRecord(dir, throughReply(reply), request.headers['upload-length'])
  reply.hijack()
  createFile(dir, reply.raw)
})

app.head('/raw/:name', { schema: { params } }, (request, reply) => {
  if (durable) return statWithRecord(dir, request.params.name, throughReply(reply))
  reply.hijack()
  statFile(join(dir, request.params.name), reply.raw)
})

app.patch('/raw/:name', { schema: { params } }, (request, reply) => {
  reply.hijack()
  const { name } = request.params
  if (discard) discardBody(request.raw, reply.raw)
  else appendBody(request.raw, reply.raw, durable ? openRecorded(dir, name, request.headers) : openForAppend(join(dir, name)))
})

/**
 * The response of raw-protocol.js's answers, sent through Fastify's reply
 * rather than on the socket: raw-durable's POST and HEAD answer as a plugin's
 * must, where the app's onSend and onResponse hooks see them.
 */
function throughReply (reply) {
  return {
    writeHead: (status, headers) => { reply.code(status).headers(headers) },
    end: () => { reply.send() }
  }
}

await serve(app)
