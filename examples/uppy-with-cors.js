// An Uppy page (Dashboard + @uppy/tus) on one origin uploading to a tus server
// on another: the page's server on PAGE_PORT serves Uppy's browser bundle from
// the `uppy` package (npm install uppy), the tus server on PORT answers CORS
// with @fastify/cors configured from the lists the plugin exports, so
// that browsers may send the tus request headers and read those of the answers
// (Location, Upload-Offset, ...).
//   node examples/uppy-with-cors.js   # then open http://localhost:8080/
import { createReadStream } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import cors from '@fastify/cors'
import Fastify from 'fastify'
import tus, { corsAllowedHeaders, corsExposedHeaders, corsMethods } from 'fastify-tus'

const host = process.env.HOST ?? '127.0.0.1'
const uppyDist = dirname(createRequire(import.meta.url).resolve('uppy/dist/uppy.min.mjs'))
const pageOrigins = new Set() // known once the page's server listens

const api = Fastify({ logger: true })
await api.register(cors, {
  origin: (origin, callback) => callback(null, pageOrigins.has(origin)),
  methods: corsMethods,
  allowedHeaders: corsAllowedHeaders,
  exposedHeaders: corsExposedHeaders,
  maxAge: 86_400
})
await api.register(tus, { uploadPath: process.env.UPLOAD_DIR ?? './uploads', uploadUrl: '/files' })
await api.listen({ port: Number(process.env.PORT ?? 1080), host })
const endpoint = `http://${host}:${api.server.address().port}/files`

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Uppy to fastify-tus</title>
  <link rel="stylesheet" href="/uppy/uppy.min.css">
</head>
<body>
  <div id="dashboard"></div>
  <ol id="uploaded"></ol>
  <script type="module">
    import { Uppy, Dashboard, Tus } from '/uppy/uppy.min.mjs'
    new Uppy({ autoProceed: true })
      .use(Dashboard, { inline: true, target: '#dashboard', showProgressDetails: true })
      .use(Tus, { endpoint: ${JSON.stringify(endpoint)}, retryDelays: [0, 1000, 3000, 5000, 10000] })
      .on('upload-success', (file, response) => {
        const item = document.createElement('li')
        item.dataset.name = file.name
        item.textContent = file.name + ': ' + response.uploadURL
        document.getElementById('uploaded').append(item)
      })
  </script>
</body>
</html>
`
const pages = Fastify({ logger: true })
pages.get('/', (request, reply) => reply.type('text/html; charset=utf-8').send(page))
for (const [file, type] of [['uppy.min.mjs', 'text/javascript'], ['uppy.min.css', 'text/css']]) {
  pages.get(`/uppy/${file}`, (request, reply) => reply.type(`${type}; charset=utf-8`).send(createReadStream(join(uppyDist, file))))
}
await pages.listen({ port: Number(process.env.PAGE_PORT ?? 8080), host })
const { port } = pages.server.address()
for (const name of ['localhost', '127.0.0.1', host]) pageOrigins.add(`http://${name}:${port}`)
