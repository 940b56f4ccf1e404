// The plugin as built in dist/, with its defaults: endpoint /uploads.
//   node benchmarks/servers/tus.js <upload directory>
import Fastify from 'fastify'
import tus from '../../dist/index.js'
import { serve, uploadDirectory } from './serve.js'

const app = Fastify({ logger: false })
await app.register(tus, { uploadPath: uploadDirectory() })
await serve(app)
