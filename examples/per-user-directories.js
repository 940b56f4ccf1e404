// One upload directory per user, from a route param: POST /users/alice/files
// stores under ./uploads/alice. A param that is not one plain path segment
// (`..`, a slash, empty) is a 404: nothing is ever written outside.
//   node examples/per-user-directories.js
import Fastify from 'fastify'
import tus from 'fastify-tus'

const root = process.env.UPLOAD_DIR ?? './uploads'
const app = Fastify({ logger: true })
await app.register(tus, {
  uploadUrl: '/users/:user/files',
  uploadPath: `${root}/{user}`,
  uploadResourceName: 'user-uploads'
})
// reverse routing by resource name: where alice uploads
app.get('/users/:user', async (request) => ({ uploadUrl: app.tusUrlFor('user-uploads', { user: request.params.user }) }))
await app.listen({ port: Number(process.env.PORT ?? 1080), host: process.env.HOST ?? '127.0.0.1' })
