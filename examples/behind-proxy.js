// Behind a TLS-terminating reverse proxy (nginx, a load balancer): with
// `trustProxy`, the Location of a new upload is the URL the client sees,
// from X-Forwarded-Proto and X-Forwarded-Host. Several such processes may share
// the upload directory with `locker: 'file'`. Relative Locations are another
// way (`relativeLocation: true`), when the proxy rewrites nothing.
//   node examples/behind-proxy.js
// nginx, for instance:
//   location /files/ {
//     proxy_pass http://127.0.0.1:1080;
//     proxy_request_buffering off;        # stream PATCH bodies, do not spool them
//     client_max_body_size 0;
//     proxy_set_header X-Forwarded-Proto $scheme;
//     proxy_set_header X-Forwarded-Host $host;
//   }
import Fastify from 'fastify'
import tus from 'fastify-tus'

const app = Fastify({ logger: true, trustProxy: process.env.TRUSTED_PROXY ?? '127.0.0.1' })
await app.register(tus, {
  uploadPath: process.env.UPLOAD_DIR ?? './uploads',
  uploadUrl: '/files',
  locker: 'file'
})
await app.listen({ port: Number(process.env.PORT ?? 1080), host: process.env.HOST ?? '127.0.0.1' })
