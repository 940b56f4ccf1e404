// The plugin as built in dist/ (or in the snapshot of it the benchmark took),
// with its defaults: endpoint /uploads.
//   node benchmarks/servers/fastify-tus.js <upload directory> [<dist directory>]
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { serve, uploadDirectory } from './serve.js'

const dist = process.argv[3] ?? new URL('../../dist', import.meta.url).pathname
const { default: tus } = await import(pathToFileURL(join(dist, 'index.js')).href)

const app = Fastify({ logger: false })
await app.register(tus, { uploadPath: uploadDirectory() })
await serve(app)
