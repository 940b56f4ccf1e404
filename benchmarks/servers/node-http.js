// For reference: the raw protocol on node:http alone, no framework. What
// Fastify itself costs is the difference from raw.js.
//   node benchmarks/servers/node-http.js <upload directory>
import { createServer } from 'node:http'
import { join } from 'node:path'
import { RAW_NAME, answer, appendBody, createFile, openForAppend, statFile } from './raw-protocol.js'
import { serve, uploadDirectory } from './serve.js'

const dir = uploadDirectory()

const server = createServer((req, res) => {
  const url = req.url ?? ''
  if (req.method === 'POST' && url === '/raw') return createFile(dir, res)
  const name = url.startsWith('/raw/') ? url.slice(5) : ''
  if (!RAW_NAME.test(name)) return answer(res, 404)
  const path = join(dir, name)
  if (req.method === 'HEAD') return statFile(path, res)
  if (req.method === 'PATCH') return appendBody(req, res, openForAppend(path))
  answer(res, 405)
})
server.requestTimeout = 0 // a 4 GiB body takes longer than the default 5 minutes on a slow machine
await serve(server)
