// Uploads only with a bearer token: @fastify/bearer-auth as the plugin's
// `onRequest` guard. CORS preflights (OPTIONS) are never guarded.
//   TOKEN=secret node examples/auth-guard.js
//   curl -i -X POST http://localhost:1080/files -H 'Authorization: Bearer secret' \
//     -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 5'
import bearerAuth from '@fastify/bearer-auth'
import Fastify from 'fastify'
import tus from 'fastify-tus'

const app = Fastify({ logger: true })
// registered without hooks of its own: its verifier is used only where the guard is
await app.register(bearerAuth, { keys: [process.env.TOKEN ?? 'secret'], addHook: false })
await app.register(tus, {
  uploadPath: process.env.UPLOAD_DIR ?? './uploads',
  uploadUrl: '/files',
  onRequest: app.verifyBearerAuth
})
await app.listen({ port: Number(process.env.PORT ?? 1080), host: process.env.HOST ?? '127.0.0.1' })
