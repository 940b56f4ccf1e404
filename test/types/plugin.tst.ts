import Fastify, { type FastifyRequest, type onRequestHookHandler } from 'fastify'
import { describe, expect, test } from 'tstyche'
import tus, {
  FileLocker, MemoryLocker, corsAllowedHeaders, corsExposedHeaders, corsMethods, errors,
  type CleanupReport, type CompletedResource, type FastifyTusOptions, type Locker, type Resource, type UploadMetadata
} from '../../lib/index.js'
import { fastifyTusPage, uploadPage } from '../../lib/page/index.js'

const app = Fastify()

describe('registration', () => {
  test('the options: only uploadPath is required', () => {
    expect(app.register(tus, { uploadPath: './uploads' })).type.not.toRaiseError()
    expect(app.register(tus, {})).type.toRaiseError()
    expect(app.register(tus, { uploadPath: './uploads', maxSize: '10GB' })).type.toRaiseError()
    expect(app.register(tus, { uploadPath: './uploads', locker: 'redis' })).type.toRaiseError()
    expect(app.register(tus, { uploadPath: './uploads', disabledExtensions: ['checksum', 'nope'] })).type.toRaiseError()
  })

  test('maxSize: a number or a function of the request, sync or async', () => {
    expect(app.register(tus, { uploadPath: '.', maxSize: 1024 })).type.not.toRaiseError()
    expect(app.register(tus, { uploadPath: '.', maxSize: (request) => request.headers['x-quota'] === undefined ? 0 : 1 })).type.not.toRaiseError()
    expect(app.register(tus, { uploadPath: '.', maxSize: async () => 1 })).type.not.toRaiseError()
  })

  test('lockers: the two kinds by name, or an instance', () => {
    expect(app.register(tus, { uploadPath: '.', locker: 'file' })).type.not.toRaiseError()
    expect(app.register(tus, { uploadPath: '.', locker: new FileLocker({ staleAfter: 5000 }) })).type.not.toRaiseError()
    expect(new MemoryLocker()).type.toBeAssignableTo<Locker>()
  })

  test('guards are onRequest hooks, one or several', () => {
    const guard: onRequestHookHandler = async () => {}
    expect(app.register(tus, { uploadPath: '.', onRequest: guard })).type.not.toRaiseError()
    expect(app.register(tus, { uploadPath: '.', onRequest: [guard, guard] })).type.not.toRaiseError()
  })
})

describe('hooks', () => {
  test('their arguments are inferred', () => {
    const options: FastifyTusOptions = {
      uploadPath: '.',
      onUploadDone: (request, resource, filePath) => {
        expect(request).type.toBe<FastifyRequest>()
        expect(resource).type.toBe<CompletedResource>()
        expect(resource.fileSize).type.toBe<number>()
        expect(filePath).type.toBe<string>()
      },
      onUploadCreate: (request, resource) => {
        expect(resource).type.toBe<Resource>()
        expect(resource.fileSize).type.toBe<number | null>()
        expect(resource.metadata).type.toBe<Readonly<UploadMetadata>>()
        return { metadata: { filename: 'renamed.txt' } }
      },
      onUploadTerminate: (request, resource) => {
        expect(resource.offset).type.toBe<number>()
      },
      onUploadProgress: (request, resource) => {
        expect(resource.uid).type.toBe<string>()
      }
    }
    expect(options).type.toBeAssignableTo<FastifyTusOptions>()
  })

  test('onUploadCreate may only return new metadata, or nothing', () => {
    expect({ uploadPath: '.', onUploadCreate: () => {} }).type.toBeAssignableTo<FastifyTusOptions>()
    expect({ uploadPath: '.', onUploadCreate: () => ({ metadata: { filename: 'a' } }) }).type.toBeAssignableTo<FastifyTusOptions>()
    expect({ uploadPath: '.', onUploadCreate: () => ({ metadata: { size: 1 } }) }).type.not.toBeAssignableTo<FastifyTusOptions>()
  })
})

describe('the decorators and exports', () => {
  test('tusUrlFor: a route name and its params give a path', () => {
    expect(app.tusUrlFor('tus:/uploads')).type.toBe<string>()
    expect(app.tusUrlFor('user_upload_resource', { username: 'bob', uid: 'x' })).type.toBe<string>()
    expect(app.tusUrlFor('user_upload', { page: 2 })).type.toBe<string>()
    expect(app.tusUrlFor).type.not.toBeCallableWith(1)
  })

  test('tusCleanup reports what it removed', async () => {
    expect(await app.tusCleanup()).type.toBe<CleanupReport>()
    expect((await app.tusCleanup()).expired).type.toBe<number>()
  })

  test('the CORS header lists are read-only string lists', () => {
    expect(corsAllowedHeaders).type.toBe<readonly string[]>()
    expect(corsExposedHeaders).type.toBe<readonly string[]>()
    expect(corsMethods).type.toBe<readonly string[]>()
  })

  test('the errors table', () => {
    expect(new errors.FST_TUS_TOO_LARGE('x')).type.toBeAssignableTo<Error>()
  })

  test('the page', () => {
    expect(app.register(fastifyTusPage, { endpoint: '/files' })).type.not.toRaiseError()
    expect(app.register(fastifyTusPage, {})).type.toRaiseError()
    expect(uploadPage({ endpoint: '/files', title: 'Upload' })).type.toBe<string>()
  })
})
