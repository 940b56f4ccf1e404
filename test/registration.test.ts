import Fastify from 'fastify'
import t, { type Test } from 'tap'
import tus, { corsAllowedHeaders, corsExposedHeaders, errors, fastifyTus, type FastifyTusOptions } from '../lib/index.js'
import { buildApp, createUpload } from './helpers.js'

async function registrationError (t: Test, options: Record<string, unknown>): Promise<Error & { code?: string }> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(tus, options as unknown as FastifyTusOptions)
  return await app.ready().then(() => { throw new Error('registration succeeded') }, (error: Error) => error)
}

t.test('a bad option fails app.ready() with a message naming it', async (t) => {
  const dir = t.testdir()
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /"uploadPath" must be a non-empty string/],
    [{ uploadPath: '' }, /"uploadPath" must be a non-empty string/],
    [{ uploadPath: 42 }, /"uploadPath"/],
    [{ uploadPath: dir, uploadUrl: 'uploads' }, /"uploadUrl" must be a path starting with "\/"/],
    [{ uploadPath: dir, uploadUrl: '/up/*' }, /"uploadUrl"/],
    [{ uploadPath: dir, uploadUrl: '/up?x=1' }, /"uploadUrl"/],
    [{ uploadPath: dir, uploadUrl: 5 }, /"uploadUrl"/],
    [{ uploadPath: dir, uploadUrl: '/u/:uid/files' }, /"uploadUrl" cannot use the parameter name "uid"/],
    [{ uploadPath: `${dir}/{user}/{team}`, uploadUrl: '/u/:user' }, /"uploadPath" has placeholders that are not route params: \{team\}/],
    [{ uploadPath: dir, uploadResourceName: '' }, /"uploadResourceName" must be a non-empty string/],
    [{ uploadPath: dir, uploadResourceName: 7 }, /"uploadResourceName"/],
    [{ uploadPath: dir, allowOverwriteFiles: 'yes' }, /"allowOverwriteFiles" must be a boolean/],
    [{ uploadPath: dir, relativeLocation: 1 }, /"relativeLocation" must be a boolean/],
    [{ uploadPath: dir, maxSize: 0 }, /"maxSize" must be a positive integer/],
    [{ uploadPath: dir, maxSize: 1.5 }, /"maxSize"/],
    [{ uploadPath: dir, maxSize: '10' }, /"maxSize"/],
    [{ uploadPath: dir, onRequest: 'auth' }, /"onRequest" must be a function or an array of functions/],
    [{ uploadPath: dir, onRequest: [() => {}, null] }, /"onRequest"/],
    [{ uploadPath: dir, onUploadDone: {} }, /"onUploadDone" must be a function/],
    [{ uploadPath: dir, jsonDumps: null }, /"jsonDumps" must be a function/],
    [{ uploadPath: dir, jsonLoads: 'JSON.parse' }, /"jsonLoads" must be a function/],
    [{ uploadPath: dir, disabledExtensions: ['creation'] }, /"disabledExtensions" must be an array of: creation-with-upload, /],
    [{ uploadPath: dir, disabledExtensions: 'checksum' }, /"disabledExtensions"/],
    [{ uploadPath: dir, checksumAlgorithms: [] }, /"checksumAlgorithms" must be a non-empty array of: sha1, md5, sha256, sha512/],
    [{ uploadPath: dir, checksumAlgorithms: ['crc32'] }, /"checksumAlgorithms"/],
    [{ uploadPath: dir, expiration: 0 }, /"expiration" must be a positive integer number of milliseconds/],
    [{ uploadPath: dir, expiration: '1h' }, /"expiration"/],
    [{ uploadPath: dir, cleanupInterval: -5 }, /"cleanupInterval" must be a positive integer number of milliseconds/],
    [{ uploadPath: dir, disabledExtensions: ['expiration'] }, /"disabledExtensions"/],
    [{ uploadPath: dir, ietfDraft: 'yes' }, /"ietfDraft" must be a boolean/],
    [{ uploadPath: dir, onUploadCreate: 1 }, /"onUploadCreate" must be a function/],
    [{ uploadPath: dir, onUploadTerminate: 1 }, /"onUploadTerminate" must be a function/],
    [{ uploadPath: dir, onUploadProgress: 1 }, /"onUploadProgress" must be a function/],
    [{ uploadPath: dir, progressInterval: 0 }, /"progressInterval" must be a positive integer number of milliseconds/],
    [{ uploadPath: dir, idleTimeout: 2 ** 31 }, /"idleTimeout" must be a positive integer number of milliseconds \(at most 2147483647\)/],
    [{ uploadPath: dir, maxConcurrentUploads: 0 }, /"maxConcurrentUploads"/],
    [{ uploadPath: dir, maxMetadataSize: -1 }, /"maxMetadataSize"/],
    [{ uploadPath: dir, locker: 'redis' }, /"locker" must be "memory", "file" or an object with acquire\(\) and tryAcquire\(\)/],
    [{ uploadPath: dir, locker: { acquire () {} } }, /"locker"/],
    [{ uploadPath: dir, locker: null }, /"locker"/]
  ]
  for (const [options, message] of cases) {
    const error = await registrationError(t, options)
    t.equal(error.code, 'FST_TUS_INVALID_OPTION', message.source)
    t.match(error.message, message)
  }
})

t.test('the prefix of an encapsulating context can provide uploadPath placeholders', async (t) => {
  const dir = t.testdir()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (scope) => {
    await scope.register(tus, { uploadPath: `${dir}/{team}`, uploadUrl: '/files', onRequest: async () => {} })
  }, { prefix: '/teams/:team' })
  const { response } = await createUpload(app, { 'upload-length': '0' }, '/teams/red/files')
  t.equal(response.statusCode, 201)
  t.match(response.headers.location, /\/teams\/red\/files\/[\w-]{21}$/)
})

t.test('uploadUrl "/" and route params with a regex or a literal colon', async (t) => {
  const root = await buildApp(t, { uploadUrl: '/' })
  const created = await createUpload(root.app, { 'upload-length': '0' }, '/')
  t.equal(created.response.statusCode, 201)
  t.match(created.path, /^\/[\w-]{21}$/)
  t.equal(root.app.tusUrlFor('tus:/'), '/')
  const fancy = await buildApp(t, { uploadUrl: '/v1::upload/:id(^\\d+)/files', uploadPath: `${t.testdir()}/{id}` })
  t.equal(fancy.app.tusUrlFor('tus:/v1::upload/:id(^\\d+)/files', { id: 42 }), '/v1:upload/42/files')
  const { response } = await createUpload(fancy.app, { 'upload-length': '0' }, '/v1:upload/42/files')
  t.equal(response.statusCode, 201)
  t.match(response.headers.location, /\/v1:upload\/42\/files\/[\w-]{21}$/)
})

t.test('exports: the plugin twice, the errors table, the CORS header lists', async (t) => {
  t.equal(tus, fastifyTus)
  t.ok(Object.keys(errors).every((code) => code.startsWith('FST_TUS_')))
  t.equal(new errors.FST_TUS_OFFSET_MISMATCH(1, 2).statusCode, 409)
  t.ok(corsAllowedHeaders.includes('Upload-Offset') && corsAllowedHeaders.includes('Tus-Resumable'))
  t.ok(corsExposedHeaders.includes('Location') && corsExposedHeaders.includes('Upload-Offset'))
  t.ok(Object.isFrozen(corsAllowedHeaders) && Object.isFrozen(corsExposedHeaders))
})
