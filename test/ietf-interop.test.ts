import { createReadStream } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import type { CompletedResource } from '../lib/index.js'
import { firstDifference, seededBytes } from './helpers.js'
import { slowProxy, startServer, waitFor, within } from './server.js'

/*
 * tus-js-client 4.3.1 in its IETF "Resumable Uploads for HTTP" modes, against a
 * real server: 'ietf-draft-03' speaks interop version 5, 'ietf-draft-05' version 6.
 */

const MiB = 1024 * 1024
const PARTIAL_UPLOAD = 'application/partial-upload'

const PROTOCOLS = [
  { protocol: 'ietf-draft-03', version: '5' },
  { protocol: 'ietf-draft-05', version: '6' }
] as const
type DraftProtocol = typeof PROTOCOLS[number]['protocol']

type UploadOptions = ConstructorParameters<typeof tus.Upload>[1]
type UploadInput = ConstructorParameters<typeof tus.Upload>[0]
/** `protocol` is an option of tus-js-client 4.3.1 that its type definitions lack. */
type DraftUploadOptions = UploadOptions & { protocol: DraftProtocol }

/** One request tus-js-client made, and what it was answered. */
interface Exchange {
  method: string
  url: string
  request: Record<string, string | undefined>
  status?: number
  response: Record<string, string | undefined>
}

const REQUEST_HEADERS = [
  'Upload-Draft-Interop-Version', 'Tus-Resumable', 'Upload-Offset', 'Upload-Length', 'Upload-Defer-Length',
  'Upload-Complete', 'Content-Type', 'Upload-Metadata', 'X-HTTP-Method-Override'
]
const RESPONSE_HEADERS = ['Upload-Offset', 'Upload-Length', 'Upload-Complete', 'Location']

/** Records the requests of a tus-js-client upload (or termination) and their answers. */
function recorder (): { exchanges: Exchange[], hooks: Pick<UploadOptions, 'onBeforeRequest' | 'onAfterResponse'> } {
  const exchanges: Exchange[] = []
  const pending = new Map<tus.HttpRequest, Exchange>()
  return {
    exchanges,
    hooks: {
      onBeforeRequest (req) {
        const exchange: Exchange = {
          method: req.getMethod(),
          url: req.getURL(),
          request: Object.fromEntries(REQUEST_HEADERS.map((name) => [name, req.getHeader(name)])),
          response: {}
        }
        exchanges.push(exchange)
        pending.set(req, exchange)
      },
      onAfterResponse (req, res) {
        const exchange = pending.get(req)
        if (exchange === undefined) return
        exchange.status = res.getStatus()
        exchange.response = Object.fromEntries(RESPONSE_HEADERS.map((name) => [name, res.getHeader(name)]))
      }
    }
  }
}

/**
 * A tus-js-client upload in an IETF mode that records every exchange;
 * `finished` settles with `onSuccess` or `onError`. Nothing is retried.
 */
function track (input: UploadInput, options: DraftUploadOptions): { upload: tus.Upload, exchanges: Exchange[], finished: Promise<void> } {
  const { exchanges, hooks } = recorder()
  let upload!: tus.Upload
  const finished = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(input, {
      retryDelays: null,
      ...options,
      ...hooks,
      onSuccess: () => resolve(),
      onError: (error) => reject(error)
    } as UploadOptions)
  })
  return { upload, exchanges, finished }
}

/** The first index at which two buffers differ, -1 when they are equal. */

const pathOf = (url: string): string => new URL(url).pathname
const uidOfUrl = (url: string): string => pathOf(url).split('/').pop() as string
const summary = (exchanges: Exchange[]): string[] => exchanges.map((exchange) => `${exchange.method} ${exchange.status ?? '-'}`)
/** An append, sent as PATCH or as a POST that overrides its method. */
const isAppend = (exchange: Exchange): boolean => exchange.method === 'PATCH' || exchange.request['X-HTTP-Method-Override'] === 'PATCH'

/** Offset retrieval over the draft: HEAD with the interop version and nothing else. */
function draftHead (app: FastifyInstance, url: string, version: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'HEAD', url: pathOf(url), headers: { 'upload-draft-interop-version': version } })
}

/** Every request spoke the draft in `version`, never tus 1.0; appends had the media type of their version. */
function checkDraftRequests (t: Test, exchanges: Exchange[], version: string): void {
  t.ok(exchanges.length > 0, 'requests were made')
  t.same(exchanges.filter((exchange) => exchange.request['Upload-Draft-Interop-Version'] !== version).map((exchange) => exchange.method), [],
    `every request carried Upload-Draft-Interop-Version: ${version}`)
  t.same(exchanges.filter((exchange) => exchange.request['Tus-Resumable'] !== undefined).map((exchange) => exchange.method), [],
    'no request carried Tus-Resumable')
  const appendType = version === '6' ? PARTIAL_UPLOAD : undefined
  t.same(exchanges.filter(isAppend).map((exchange) => exchange.request['Content-Type']).filter((type) => type !== appendType), [],
    `every append carried ${appendType === undefined ? 'no Content-Type' : `Content-Type: ${appendType}`}`)
}

/** The file stored under `name` is `data`, byte for byte. */
async function checkStored (t: Test, dir: string, name: string, data: Buffer): Promise<void> {
  const stored = await readFile(join(dir, name))
  t.equal(stored.length, data.length, `${name} has the size of the data`)
  t.equal(firstDifference(stored, data), -1, `${name} is byte-exact`)
}

/** Completed uploads, as `onUploadDone` saw them. */
function doneRecorder (): { calls: Array<{ resource: CompletedResource, filePath: string }>, onUploadDone: (request: unknown, resource: CompletedResource, filePath: string) => void } {
  const calls: Array<{ resource: CompletedResource, filePath: string }> = []
  return { calls, onUploadDone: (_request, resource, filePath) => { calls.push({ resource, filePath }) } }
}

/** HEAD over the draft says the upload is complete at `size`. */
async function checkCompleteHead (t: Test, app: FastifyInstance, url: string, version: string, size: number): Promise<void> {
  const head = await draftHead(app, url, version)
  t.equal(head.statusCode, 204, 'HEAD (draft) of the completed upload: 204')
  t.equal(head.headers['upload-offset'], String(size), 'HEAD (draft): the full offset')
  t.equal(head.headers['upload-complete'], '?1', 'HEAD (draft): Upload-Complete: ?1')
  t.equal(head.headers['upload-length'], String(size), 'HEAD (draft): Upload-Length')
}

for (const { protocol, version } of PROTOCOLS) {
  t.test(`${protocol} (interop version ${version})`, async (t) => {
    t.test('a 16 MiB upload in 3 MiB chunks is byte-exact', async (t) => {
      const done = doneRecorder()
      const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
      const data = seededBytes(16 * MiB, 16 + Number(version))
      const { upload, exchanges, finished } = track(data, { protocol, endpoint, chunkSize: 3 * MiB, metadata: { filename: 'big.bin' } })
      upload.start()
      await within('the 16 MiB upload', finished, 20_000)

      const url = upload.url as string
      t.match(url, new RegExp(`^${endpoint}/[A-Za-z0-9_-]{21}$`), 'Location is an absolute upload URL')
      checkDraftRequests(t, exchanges, version)
      const [creation, ...patches] = exchanges
      t.equal(creation?.method, 'POST')
      t.equal(creation?.status, 201, 'creation: 201')
      t.equal(creation?.request['Upload-Length'], String(data.length))
      t.equal(creation?.request['Upload-Complete'], '?0', 'creation without data says ?0')
      t.equal(creation?.request['Content-Type'], undefined, 'creation without data has no Content-Type')
      t.equal(creation?.response['Upload-Complete'], '?0', 'the 201 says the upload is not complete')
      t.equal(creation?.response['Upload-Offset'], '0')
      t.equal(patches.length, Math.ceil(16 / 3), 'one PATCH per 3 MiB chunk')
      patches.forEach((patch, index) => {
        const last = index === patches.length - 1
        const end = Math.min((index + 1) * 3 * MiB, data.length)
        t.equal(patch.method, 'PATCH')
        t.equal(patch.request['Upload-Offset'], String(index * 3 * MiB), `chunk ${index} sent at its offset`)
        t.equal(patch.request['Upload-Complete'], last ? '?1' : '?0', `chunk ${index}: Upload-Complete ${last ? '?1' : '?0'}`)
        t.equal(patch.status, 201, `chunk ${index}: 201`)
        t.equal(patch.response['Upload-Offset'], String(end), `chunk ${index} acknowledged`)
        t.equal(patch.response['Upload-Complete'], last ? '?1' : '?0', `chunk ${index} answered Upload-Complete ${last ? '?1' : '?0'}`)
      })

      const filePath = join(dir, 'big.bin')
      await checkStored(t, dir, 'big.bin', data)
      t.equal(done.calls.length, 1, 'onUploadDone called once')
      const call = done.calls[0]
      t.equal(call?.filePath, filePath, 'onUploadDone got the completed file path')
      t.equal(call?.resource.offset, data.length, 'onUploadDone: offset is the size')
      t.equal(call?.resource.fileSize, call?.resource.offset, 'onUploadDone: offset === fileSize')
      t.equal(call?.resource.fileName, 'big.bin')
      t.equal(call?.resource.uid, uidOfUrl(url))
      await checkCompleteHead(t, app, url, version, data.length)
      t.same(await readdir(join(dir, '.metadata')), [`${uidOfUrl(url)}.json`], 'only the record stays')
    })

    t.test('an upload aborted at about 40% resumes byte-exact with a new Upload', async (t) => {
      const done = doneRecorder()
      const { app, dir, port } = await startServer(t, { onUploadDone: done.onUploadDone })
      const proxyPort = await slowProxy(t, port, 16 * MiB)
      const endpoint = `http://127.0.0.1:${proxyPort}/uploads`
      const data = seededBytes(16 * MiB, 40 + Number(version))
      const metadata = { filename: 'resumed.bin' }

      let abortedAt!: (sent: Promise<number>) => void
      const aborted = new Promise<number>((resolve) => { abortedAt = resolve })
      let stopped = false
      const first = track(data, {
        protocol,
        endpoint,
        metadata,
        onProgress (sent, total) {
          if (stopped || sent < 0.4 * total) return
          stopped = true
          abortedAt(first.upload.abort().then(() => sent))
        }
      })
      first.upload.start()
      const sent = await within('40% progress', Promise.race([aborted, first.finished.then(() => { throw new Error('the upload finished before it was aborted') })]), 15_000)
      t.ok(sent >= 0.4 * data.length && sent < data.length, `aborted after sending ${sent} bytes`)
      const url = first.upload.url as string
      t.match(url, new RegExp(`^${endpoint}/[A-Za-z0-9_-]{21}$`))
      checkDraftRequests(t, first.exchanges, version)
      t.same(first.exchanges.map((exchange) => exchange.method), ['POST', 'PATCH'], 'a creation and one PATCH, cut short')
      t.equal(first.exchanges[1]?.request['Upload-Complete'], '?1', 'the whole file in one PATCH that says ?1')

      // the server keeps what reached it; wait until the cut request has let go of the upload
      let last = -1
      let same = 0
      const offset = await waitFor('the offset to settle', async () => {
        const head = await draftHead(app, url, version)
        if (head.statusCode !== 204) throw new Error(`HEAD (draft) answered ${head.statusCode}: ${head.body}`)
        const current = Number(head.headers['upload-offset'])
        same = current === last ? same + 1 : 0
        last = current
        return same >= 3 ? current : undefined
      }, 10_000, 30)
      const head = await draftHead(app, url, version)
      t.equal(head.statusCode, 204, 'HEAD (draft): 204')
      t.equal(head.headers['upload-offset'], String(offset))
      t.ok(offset > 0 && offset < data.length, `HEAD (draft) shows a partial offset: 0 < ${offset} < ${data.length}`)
      t.equal(head.headers['upload-complete'], '?0', 'HEAD (draft): Upload-Complete: ?0')
      t.equal(head.headers['cache-control'], 'no-store', 'HEAD (draft): Cache-Control: no-store')
      if (version === '6') t.equal(head.headers['upload-length'], String(data.length), 'HEAD (draft): Upload-Length')
      t.equal((await stat(join(dir, '.metadata', `${uidOfUrl(url)}.part`))).size, offset, 'the offset is the data on disk')
      t.equal(done.calls.length, 0, 'not complete yet')

      const second = track(data, { protocol, uploadUrl: url, metadata })
      second.upload.start()
      await within('the resumed upload', second.finished, 15_000)
      checkDraftRequests(t, second.exchanges, version)
      t.same(summary(second.exchanges), ['HEAD 204', 'PATCH 201'], 'resumed with a HEAD and one PATCH, no new creation')
      t.equal(second.exchanges[0]?.response['Upload-Offset'], String(offset))
      t.equal(second.exchanges[0]?.response['Upload-Complete'], '?0')
      t.equal(second.exchanges[1]?.request['Upload-Offset'], String(offset), 'the PATCH starts where the server stands')
      t.equal(second.exchanges[1]?.request['Upload-Complete'], '?1')
      t.equal(second.exchanges[1]?.response['Upload-Offset'], String(data.length))
      t.equal(second.exchanges[1]?.response['Upload-Complete'], '?1')

      await checkStored(t, dir, 'resumed.bin', data)
      t.equal(done.calls.length, 1, 'onUploadDone called once')
      t.equal(done.calls[0]?.resource.offset, data.length, 'onUploadDone: offset is the size')
      await checkCompleteHead(t, app, url, version, data.length)

      // a client that resumes the finished upload learns from HEAD that it is done
      const third = track(data, { protocol, uploadUrl: url, metadata })
      third.upload.start()
      await within('the resumption of a finished upload', third.finished, 5000)
      t.same(summary(third.exchanges), ['HEAD 204'], 'nothing is sent again')
      t.equal(done.calls.length, 1, 'not completed twice')
    })

    t.test('uploadDataDuringCreation is byte-exact', async (t) => {
      const done = doneRecorder()
      const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })

      t.test('the first chunk in the POST, the rest in PATCHes', async (t) => {
        const data = seededBytes(2.5 * MiB + 3, 7)
        const { upload, exchanges, finished } = track(data, {
          protocol, endpoint, chunkSize: MiB, uploadDataDuringCreation: true, metadata: { filename: 'with-post.bin' }
        })
        upload.start()
        await within('the upload', finished, 15_000)
        checkDraftRequests(t, exchanges, version)
        t.same(summary(exchanges), ['POST 201', 'PATCH 201', 'PATCH 201'], 'a POST with the first chunk, then two PATCHes')
        const [creation, second, third] = exchanges
        t.equal(creation?.request['Content-Type'], version === '6' ? PARTIAL_UPLOAD : undefined, 'the POST carries the client\'s media type')
        t.equal(creation?.request['Upload-Complete'], '?0')
        t.equal(creation?.response['Upload-Offset'], String(MiB), 'the 201 says how much it stored')
        t.equal(creation?.response['Upload-Complete'], '?0')
        t.equal(second?.request['Upload-Offset'], String(MiB))
        t.equal(third?.request['Upload-Offset'], String(2 * MiB))
        t.equal(third?.request['Upload-Complete'], '?1')
        t.equal(third?.response['Upload-Offset'], String(data.length))
        t.equal(third?.response['Upload-Complete'], '?1')
        await checkStored(t, dir, 'with-post.bin', data)
        t.equal(done.calls.length, 1, 'onUploadDone called once')
        t.equal(done.calls[0]?.resource.offset, data.length, 'onUploadDone: offset is the size')
        t.equal(done.calls[0]?.resource.fileSize, data.length, 'onUploadDone: fileSize is the size')
        await checkCompleteHead(t, app, upload.url as string, version, data.length)
      })

      t.test('the whole file in the POST', async (t) => {
        const data = seededBytes(3 * MiB + 1, 8)
        const { upload, exchanges, finished } = track(data, {
          protocol, endpoint, uploadDataDuringCreation: true, metadata: { filename: 'only-post.bin' }
        })
        upload.start()
        await within('the upload', finished, 15_000)
        checkDraftRequests(t, exchanges, version)
        t.same(summary(exchanges), ['POST 201'], 'no PATCH needed')
        t.equal(exchanges[0]?.request['Upload-Complete'], '?1')
        t.equal(exchanges[0]?.response['Upload-Offset'], String(data.length))
        t.equal(exchanges[0]?.response['Upload-Complete'], '?1')
        await checkStored(t, dir, 'only-post.bin', data)
        t.equal(done.calls.length, 2, 'both uploads completed')
        t.equal(done.calls[1]?.resource.offset, data.length, 'onUploadDone: offset is the size')
        t.equal(done.calls[1]?.filePath, join(dir, 'only-post.bin'))
        await checkCompleteHead(t, app, upload.url as string, version, data.length)
      })
    })

    t.test('a deferred length with a Readable input is byte-exact', async (t) => {
      const done = doneRecorder()
      const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })

      // sizes that end inside a chunk: with a size that is a multiple of chunkSize,
      // tus-js-client 4.3.1 itself never ends (tus/tus-js-client#779)
      for (const size of [3 * MiB + 12_345, 100_000]) {
        t.test(`${size} bytes`, async (t) => {
          const data = seededBytes(size, size)
          const name = `stream-${size}.bin`
          const pieces = function * () {
            for (let start = 0; start < data.length; start += 100_000) yield data.subarray(start, start + 100_000)
          }
          const input = Readable.from(pieces(), { objectMode: false })
          const { upload, exchanges, finished } = track(input, {
            protocol, endpoint, chunkSize: MiB, uploadLengthDeferred: true, metadata: { filename: name }
          })
          upload.start()
          await within('the upload', finished, 15_000)
          checkDraftRequests(t, exchanges, version)

          const [creation, ...patches] = exchanges
          t.equal(creation?.method, 'POST')
          t.equal(creation?.status, 201, 'creation: 201')
          t.equal(creation?.request['Upload-Defer-Length'], '1')
          t.equal(creation?.request['Upload-Length'], undefined)
          t.equal(creation?.response['Upload-Length'], undefined, 'no length known at creation')
          t.equal(patches.length, Math.ceil(size / MiB), `one PATCH per chunk: ${patches.map((patch) => `${patch.request['Upload-Offset']}+${patch.request['Upload-Length'] ?? '?'} ${patch.request['Upload-Complete']}`).join(', ')}`)
          t.ok(patches.every((patch) => patch.method === 'PATCH' && patch.status === 201), 'every PATCH answered 201')
          t.same(patches.map((patch) => patch.request['Upload-Length']).filter((length) => length !== undefined), [String(size)],
            'the length is sent once, with the last PATCH')
          t.same(patches.map((patch) => patch.request['Upload-Complete']), patches.map((_, index) => index === patches.length - 1 ? '?1' : '?0'),
            'only the last PATCH says ?1')
          t.equal(patches.at(-1)?.request['Upload-Length'], String(size))
          t.equal(patches.at(-1)?.response['Upload-Offset'], String(size))
          t.equal(patches.at(-1)?.response['Upload-Complete'], '?1')

          await checkStored(t, dir, name, data)
          const call = done.calls.find((entry) => entry.resource.fileName === name)
          t.equal(call?.resource.fileSize, size, 'onUploadDone sees the declared length')
          t.equal(call?.resource.offset, size, 'onUploadDone: offset is the size')
          await checkCompleteHead(t, app, upload.url as string, version, size)
        })
      }
    })

    t.test('an fs.ReadStream in chunks completes although its last PATCH says Upload-Complete: ?0', async (t) => {
      const data = seededBytes(2.5 * MiB + 7, 25)
      const source = join(t.testdir({ 'source.bin': data }), 'source.bin')
      t.equal((await stat(source)).size, data.length, 'the input file is written')

      // the server in a subtest: its upload directory is the subtest's own
      t.test('uploaded with chunkSize', async (t) => {
        const done = doneRecorder()
        const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
        const { upload, exchanges, finished } = track(createReadStream(source), {
          protocol, endpoint, chunkSize: MiB, metadata: { filename: 'from-file.bin' }
        })
        upload.start()
        await within('the upload', finished, 15_000)
        checkDraftRequests(t, exchanges, version)
        t.same(summary(exchanges), ['POST 201', 'PATCH 201', 'PATCH 201', 'PATCH 201'], 'a creation, then one PATCH per chunk')
        const patches = exchanges.slice(1)
        t.same(patches.map((patch) => patch.request['Upload-Complete']), ['?0', '?0', '?0'],
          'tus-js-client marks every PATCH ?0, the last one too (its FileSource quirk)')
        t.same(patches.map((patch) => patch.request['Upload-Offset']), ['0', String(MiB), String(2 * MiB)], 'each chunk at its offset')
        t.equal(patches.at(-1)?.response['Upload-Offset'], String(data.length), 'the last PATCH reaches the length')
        t.equal(patches.at(-1)?.response['Upload-Complete'], '?1', 'and the server says the upload is complete')

        await checkStored(t, dir, 'from-file.bin', data)
        t.equal(done.calls.length, 1, 'onUploadDone called once')
        t.equal(done.calls[0]?.resource.offset, data.length, 'onUploadDone: offset is the size')
        t.equal(done.calls[0]?.resource.fileSize, data.length, 'onUploadDone: fileSize is the size')
        await checkCompleteHead(t, app, upload.url as string, version, data.length)
        t.same(await readdir(join(dir, '.metadata')), [`${uidOfUrl(upload.url as string)}.json`], 'only the record stays')
      })
    })

    t.test('overridePatchMethod (POST with X-HTTP-Method-Override: PATCH) is byte-exact', async (t) => {
      const done = doneRecorder()
      const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
      const data = seededBytes(3 * MiB + 5, 12)
      const { upload, exchanges, finished } = track(data, {
        protocol, endpoint, chunkSize: MiB, overridePatchMethod: true, metadata: { filename: 'override.bin' }
      })
      upload.start()
      await within('the upload', finished, 15_000)
      checkDraftRequests(t, exchanges, version)
      t.same(summary(exchanges), ['POST 201', 'POST 201', 'POST 201', 'POST 201', 'POST 201'], 'a creation, then four appends as POST')
      const appends = exchanges.slice(1)
      t.ok(appends.every((append) => append.request['X-HTTP-Method-Override'] === 'PATCH'), 'every append overrides its method')
      t.equal(exchanges[0]?.request['X-HTTP-Method-Override'], undefined, 'the creation does not')
      t.same(appends.map((append) => append.request['Upload-Offset']), [0, 1, 2, 3].map((index) => String(index * MiB)), 'each chunk at its offset')
      t.same(appends.map((append) => append.request['Upload-Complete']), ['?0', '?0', '?0', '?1'], 'only the last append says ?1')
      t.equal(appends.at(-1)?.response['Upload-Offset'], String(data.length))
      t.equal(appends.at(-1)?.response['Upload-Complete'], '?1')
      await checkStored(t, dir, 'override.bin', data)
      t.equal(done.calls.length, 1, 'onUploadDone called once')
      t.equal(done.calls[0]?.resource.offset, data.length, 'onUploadDone: offset is the size')
      await checkCompleteHead(t, app, upload.url as string, version, data.length)
    })

    t.test('Upload.terminate removes an aborted upload', async (t) => {
      const done = doneRecorder()
      const { app, dir, port } = await startServer(t, { onUploadDone: done.onUploadDone })
      const proxyPort = await slowProxy(t, port, 8 * MiB)
      const endpoint = `http://127.0.0.1:${proxyPort}/uploads`
      const data = seededBytes(8 * MiB, 3)
      const { upload, exchanges, finished } = track(data, { protocol, endpoint, metadata: { filename: 'gone.bin' } })
      let failed: unknown
      finished.catch((error: unknown) => { failed = error })
      upload.start()

      const url = await waitFor('the upload URL', () => upload.url ?? undefined, 10_000)
      const uid = uidOfUrl(url)
      await waitFor('the first bytes on the server', async () => {
        const head = await draftHead(app, url, version)
        return Number(head.headers['upload-offset']) > 0 ? true : undefined
      }, 10_000)
      await upload.abort()
      t.ok(await stat(join(dir, '.metadata', `${uid}.part`)), 'there is data to remove')
      checkDraftRequests(t, exchanges, version)

      const termination = recorder()
      await within('terminate', tus.Upload.terminate(url, { protocol, retryDelays: null, ...termination.hooks } as UploadOptions), 5000)
      checkDraftRequests(t, termination.exchanges, version)
      t.same(summary(termination.exchanges), ['DELETE 204'], 'one DELETE, answered 204')
      t.same(termination.exchanges[0]?.request, {
        ...Object.fromEntries(REQUEST_HEADERS.map((name) => [name, undefined])),
        'Upload-Draft-Interop-Version': version
      }, 'the DELETE carries the interop version and no upload state')

      const head = await draftHead(app, url, version)
      t.equal(head.statusCode, 404, 'HEAD (draft) after termination is 404')
      const left = await readdir(join(dir, '.metadata'))
      t.same(left.filter((name) => name.includes(uid)), [], 'no file of the upload is left in .metadata')
      t.same(left.filter((name) => name.endsWith('.name')), [], 'the file name is no longer reserved')
      t.same((await readdir(dir)).filter((name) => name !== '.metadata'), [], 'no completed file')
      t.equal(done.calls.length, 0, 'onUploadDone never called')
      t.equal(failed, undefined, 'the aborted upload reported no error')
    })
  })
}
