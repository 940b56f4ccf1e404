import cors from '@fastify/cors'
import Fastify from 'fastify'
import t from 'tap'
import tus, { corsAllowedHeaders, corsExposedHeaders, corsMethods } from '../lib/index.js'
import { TUS } from './helpers.js'

const ORIGIN = 'https://app.example'

t.test('@fastify/cors with the exported lists: a guarded endpoint answers preflights without credentials, and guards the rest', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cors, { origin: ORIGIN, allowedHeaders: [...corsAllowedHeaders], exposedHeaders: [...corsExposedHeaders], methods: [...corsMethods] })
  await app.register(tus, {
    uploadPath: t.testdir(),
    onRequest: async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send({ message: 'who are you?' })
    }
  })
  for (const url of ['/uploads', '/uploads/some-upload']) {
    const preflight = await app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin: ORIGIN, 'access-control-request-method': url === '/uploads' ? 'POST' : 'PATCH', 'access-control-request-headers': 'authorization, tus-resumable, upload-offset, content-type' }
    })
    t.equal(preflight.statusCode, 204, `the preflight of ${url} is not guarded`)
    t.equal(preflight.headers['access-control-allow-origin'], ORIGIN)
    t.equal(preflight.headers['access-control-allow-headers'], corsAllowedHeaders.join(', '))
    t.equal(preflight.headers['access-control-allow-methods'], corsMethods.join(', '))
  }
  const refused = await app.inject({ method: 'POST', url: '/uploads', headers: { ...TUS, 'upload-length': '1', origin: ORIGIN } })
  t.equal(refused.statusCode, 401, 'the creation itself is guarded')
  t.equal(refused.headers['access-control-allow-origin'], ORIGIN, 'and its refusal readable by the page')
  const created = await app.inject({ method: 'POST', url: '/uploads', headers: { ...TUS, 'upload-length': '1', origin: ORIGIN, authorization: 'Bearer ok' } })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['access-control-expose-headers'], corsExposedHeaders.join(', '))
  for (const header of ['Location', 'Upload-Offset', 'Upload-Length', 'Tus-Resumable', 'Upload-Expires']) t.ok(corsExposedHeaders.includes(header), `${header} is exposed`)
  for (const header of ['Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Tus-Resumable', 'Upload-Checksum', 'Upload-Concat']) t.ok(corsAllowedHeaders.includes(header), `${header} is allowed`)
})
