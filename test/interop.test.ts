import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import * as tus from 'tus-js-client'
import type { CompletedResource } from '../lib/index.js'
import { firstDifference, headUpload, offsetOf, seededBytes } from './helpers.js'
import { slowProxy, startServer, waitFor, within } from './server.js'

const MiB = 1024 * 1024

type UploadOptions = ConstructorParameters<typeof tus.Upload>[1]
type UploadInput = ConstructorParameters<typeof tus.Upload>[0]

/** One request tus-js-client made, and what it was answered. */
interface Exchange {
  method: string
  url: string
  request: Record<string, string | undefined>
  status?: number
  response: Record<string, string | undefined>
}

const REQUEST_HEADERS = ['Upload-Offset', 'Upload-Length', 'Upload-Defer-Length', 'Content-Type', 'Upload-Metadata']
const RESPONSE_HEADERS = ['Upload-Offset', 'Upload-Length', 'Location', 'Tus-Resumable']

/**
 * A tus-js-client upload that records every exchange; `finished` settles with
 * `onSuccess` or `onError`. Nothing is retried unless the options say so.
 */
function track (input: UploadInput, options: UploadOptions): { upload: tus.Upload, exchanges: Exchange[], finished: Promise<void> } {
  const exchanges: Exchange[] = []
  const pending = new Map<tus.HttpRequest, Exchange>()
  let upload!: tus.Upload
  const finished = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(input, {
      retryDelays: null,
      ...options,
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
      },
      onSuccess: () => resolve(),
      onError: (error) => reject(error)
    })
  })
  return { upload, exchanges, finished }
}

/** The first index at which two buffers differ, -1 when they are equal. */

const pathOf = (url: string): string => new URL(url).pathname
const uidOfUrl = (url: string): string => pathOf(url).split('/').pop() as string

/** Completed uploads, as `onUploadDone` saw them. */
function doneRecorder (): { calls: Array<{ resource: CompletedResource, filePath: string }>, onUploadDone: (request: unknown, resource: CompletedResource, filePath: string) => void } {
  const calls: Array<{ resource: CompletedResource, filePath: string }> = []
  return { calls, onUploadDone: (_request, resource, filePath) => { calls.push({ resource, filePath }) } }
}

t.test('a 64 MiB upload in 5 MiB chunks is byte-exact', async (t) => {
  const done = doneRecorder()
  const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
  const data = seededBytes(64 * MiB, 64)
  const { upload, exchanges, finished } = track(data, { endpoint, chunkSize: 5 * MiB, metadata: { filename: 'big.bin' } })
  upload.start()
  await within('the 64 MiB upload', finished, 45_000)

  const url = upload.url as string
  t.match(url, new RegExp(`^${endpoint}/[A-Za-z0-9_-]{21}$`), 'Location is an absolute upload URL')
  const [creation, ...patches] = exchanges
  t.equal(creation?.method, 'POST')
  t.equal(creation?.status, 201)
  t.equal(creation?.request['Upload-Length'], String(data.length))
  t.equal(patches.length, Math.ceil(64 / 5), 'one PATCH per 5 MiB chunk')
  patches.forEach((patch, index) => {
    t.equal(patch.method, 'PATCH')
    t.equal(patch.request['Upload-Offset'], String(index * 5 * MiB), `chunk ${index} sent at its offset`)
    t.equal(patch.status, 204)
    t.equal(patch.response['Upload-Offset'], String(Math.min((index + 1) * 5 * MiB, data.length)), `chunk ${index} acknowledged`)
    t.equal(patch.response['Tus-Resumable'], '1.0.0')
  })

  const filePath = join(dir, 'big.bin')
  const stored = await readFile(filePath)
  t.equal(stored.length, data.length)
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.equal(done.calls.length, 1, 'onUploadDone called once')
  const call = done.calls[0]
  t.equal(call?.filePath, filePath, 'onUploadDone got the completed file path')
  t.equal(call?.resource.offset, data.length, 'onUploadDone: offset is the size')
  t.equal(call?.resource.fileSize, data.length, 'onUploadDone: fileSize is the size')
  t.equal(call?.resource.fileName, 'big.bin')
  t.equal(call?.resource.uid, uidOfUrl(url))
  t.equal(await offsetOf(app, url), data.length, 'HEAD of the completed upload gives its full offset')
  t.same(await readdir(join(dir, '.metadata')), [`${uidOfUrl(url)}.json`], 'only the record stays')
})

t.test('an upload aborted at about 40% resumes byte-exact with a new Upload', async (t) => {
  const done = doneRecorder()
  const { app, dir, port } = await startServer(t, { onUploadDone: done.onUploadDone })
  // the client is slowed down on the way to the server, so that its progress can be watched
  const proxyPort = await slowProxy(t, port, 24 * MiB)
  const endpoint = `http://127.0.0.1:${proxyPort}/uploads`
  const data = seededBytes(24 * MiB, 40)
  const metadata = { filename: 'resumed.bin' }

  let abortedAt!: (sent: Promise<number>) => void
  const aborted = new Promise<number>((resolve) => { abortedAt = resolve })
  let stopped = false
  const first = track(data, {
    endpoint,
    metadata,
    onProgress (sent, total) {
      if (stopped || sent < 0.4 * total) return
      stopped = true
      abortedAt(first.upload.abort().then(() => sent))
    }
  })
  first.upload.start()
  const sent = await within('40% progress', Promise.race([aborted, first.finished.then(() => { throw new Error('the upload finished before it was aborted') })]), 20_000)
  t.ok(sent >= 0.4 * data.length && sent < data.length, `aborted after sending ${sent} bytes`)
  const url = first.upload.url as string
  t.match(url, new RegExp(`^${endpoint}/[A-Za-z0-9_-]{21}$`))
  t.equal(first.exchanges.filter((exchange) => exchange.method === 'PATCH').length, 1, 'one PATCH, cut short')

  // the server keeps what reached it; wait until the cut request has let go of the upload
  let last = -1
  let same = 0
  const offset = await waitFor('the offset to settle', async () => {
    const current = await offsetOf(app, url)
    same = current === last ? same + 1 : 0
    last = current
    return same >= 3 ? current : undefined
  }, 10_000, 30)
  t.ok(offset > 0 && offset < data.length, `HEAD shows a partial offset: 0 < ${offset} < ${data.length}`)
  t.equal((await stat(join(dir, '.metadata', `${uidOfUrl(url)}.part`))).size, offset, 'the offset is the data on disk')
  t.equal(done.calls.length, 0, 'not complete yet')

  const second = track(data, { uploadUrl: url, metadata })
  second.upload.start()
  await within('the resumed upload', second.finished, 30_000)
  const methods = second.exchanges.map((exchange) => exchange.method)
  t.same(methods, ['HEAD', 'PATCH'], 'resumed with a HEAD and one PATCH, no new creation')
  t.equal(second.exchanges[0]?.response['Upload-Offset'], String(offset))
  t.equal(second.exchanges[1]?.request['Upload-Offset'], String(offset), 'the PATCH starts where the server stands')
  t.equal(second.exchanges[1]?.status, 204)
  t.equal(second.exchanges[1]?.response['Upload-Offset'], String(data.length))

  const stored = await readFile(join(dir, 'resumed.bin'))
  t.equal(stored.length, data.length)
  t.equal(firstDifference(stored, data), -1, 'the completed file is byte-exact')
  t.equal(done.calls.length, 1, 'onUploadDone called once')
  t.equal(done.calls[0]?.resource.offset, data.length)

  // a client that resumes the finished upload learns from HEAD that it is done
  const third = track(data, { uploadUrl: url, metadata })
  third.upload.start()
  await within('the resumption of a finished upload', third.finished, 5000)
  t.same(third.exchanges.map((exchange) => `${exchange.method} ${exchange.status}`), ['HEAD 200'], 'nothing is sent again')
  t.equal(done.calls.length, 1, 'not completed twice')
})

t.test('creation-with-upload (uploadDataDuringCreation) is byte-exact', async (t) => {
  const done = doneRecorder()
  const { dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })

  t.test('the first chunk in the POST, the rest in PATCHes', async (t) => {
    const data = seededBytes(2.5 * MiB + 3, 7)
    const { upload, exchanges, finished } = track(data, {
      endpoint, chunkSize: MiB, uploadDataDuringCreation: true, metadata: { filename: 'with-post.bin' }
    })
    upload.start()
    await within('the upload', finished, 20_000)
    t.same(exchanges.map((exchange) => `${exchange.method} ${exchange.status}`), ['POST 201', 'PATCH 204', 'PATCH 204'])
    t.equal(exchanges[0]?.request['Content-Type'], 'application/offset+octet-stream', 'the POST carries data')
    t.equal(exchanges[0]?.response['Upload-Offset'], String(MiB), 'the 201 says how much it stored')
    t.equal(exchanges[1]?.request['Upload-Offset'], String(MiB))
    t.equal(exchanges[2]?.request['Upload-Offset'], String(2 * MiB))
    t.equal(exchanges[2]?.response['Upload-Offset'], String(data.length))
    const stored = await readFile(join(dir, 'with-post.bin'))
    t.equal(firstDifference(stored, data), -1, 'byte-exact')
  })

  t.test('the whole file in the POST', async (t) => {
    const data = seededBytes(3 * MiB + 1, 8)
    const { upload, exchanges, finished } = track(data, {
      endpoint, uploadDataDuringCreation: true, metadata: { filename: 'only-post.bin' }
    })
    upload.start()
    await within('the upload', finished, 20_000)
    t.same(exchanges.map((exchange) => `${exchange.method} ${exchange.status}`), ['POST 201'], 'no PATCH needed')
    t.equal(exchanges[0]?.response['Upload-Offset'], String(data.length))
    const stored = await readFile(join(dir, 'only-post.bin'))
    t.equal(firstDifference(stored, data), -1, 'byte-exact')
    t.equal(done.calls.length, 2, 'both uploads completed')
    t.equal(done.calls[1]?.resource.offset, data.length)
    t.equal(done.calls[1]?.filePath, join(dir, 'only-post.bin'))
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
        endpoint, chunkSize: MiB, uploadLengthDeferred: true, metadata: { filename: name }
      })
      upload.start()
      await within('the upload', finished, 20_000)

      const [creation, ...patches] = exchanges
      t.equal(creation?.method, 'POST')
      t.equal(creation?.request['Upload-Defer-Length'], '1')
      t.equal(creation?.request['Upload-Length'], undefined)
      t.ok(patches.length >= Math.ceil(size / MiB), `${patches.length} PATCHes: ${patches.map((patch) => `${patch.request['Upload-Offset']}+${patch.request['Upload-Length'] ?? '?'}`).join(', ')}`)
      t.ok(patches.every((patch) => patch.method === 'PATCH' && patch.status === 204), 'every PATCH answered 204')
      t.same(patches.map((patch) => patch.request['Upload-Length']).filter((length) => length !== undefined), [String(size)],
        'the length is sent once, with the last PATCH')
      t.equal(patches.at(-1)?.request['Upload-Length'], String(size))
      t.equal(patches.at(-1)?.response['Upload-Offset'], String(size))

      const stored = await readFile(join(dir, name))
      t.equal(stored.length, size)
      t.equal(firstDifference(stored, data), -1, 'byte-exact')
      const call = done.calls.find((entry) => entry.resource.fileName === name)
      t.equal(call?.resource.fileSize, size, 'onUploadDone sees the declared length')
      t.equal(call?.resource.offset, size)
      const head = await headUpload(app, pathOf(upload.url as string))
      t.equal(head.headers['upload-length'], String(size), 'HEAD now gives Upload-Length')
      t.notOk('upload-defer-length' in head.headers)
    })
  }
})

t.test('overridePatchMethod (POST with X-HTTP-Method-Override: PATCH) is byte-exact', async (t) => {
  const done = doneRecorder()
  const { dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
  const data = seededBytes(3 * MiB + 5, 12)
  const { upload, exchanges, finished } = track(data, {
    endpoint, chunkSize: MiB, overridePatchMethod: true, metadata: { filename: 'override.bin' }
  })
  upload.start()
  await within('the upload', finished, 20_000)
  t.same(exchanges.map((exchange) => `${exchange.method} ${exchange.status}`), ['POST 201', 'POST 204', 'POST 204', 'POST 204', 'POST 204'])
  t.equal(exchanges.at(-1)?.response['Upload-Offset'], String(data.length))
  t.equal(firstDifference(await readFile(join(dir, 'override.bin')), data), -1, 'byte-exact')
  t.equal(done.calls.length, 1)
})

t.test('Upload.terminate removes an aborted upload', async (t) => {
  const done = doneRecorder()
  const { app, dir, port } = await startServer(t, { onUploadDone: done.onUploadDone })
  const proxyPort = await slowProxy(t, port, 8 * MiB)
  const endpoint = `http://127.0.0.1:${proxyPort}/uploads`
  const data = seededBytes(8 * MiB, 3)
  const { upload, finished } = track(data, { endpoint, metadata: { filename: 'gone.bin' } })
  let failed: unknown
  finished.catch((error: unknown) => { failed = error })
  upload.start()

  const url = await waitFor('the upload URL', () => upload.url ?? undefined, 10_000)
  const uid = uidOfUrl(url)
  await waitFor('the first bytes on the server', async () => (await offsetOf(app, url)) > 0 ? true : undefined, 10_000)
  await upload.abort()
  t.ok(await stat(join(dir, '.metadata', `${uid}.part`)), 'there is data to remove')

  await within('terminate', tus.Upload.terminate(url, { retryDelays: null }), 5000)
  const head = await headUpload(app, pathOf(url))
  t.equal(head.statusCode, 404, 'HEAD after termination is 404')
  const left = await readdir(join(dir, '.metadata'))
  t.same(left.filter((name) => name.includes(uid)), [], 'no file of the upload is left in .metadata')
  t.same(left.filter((name) => name.endsWith('.name')), [], 'the file name is no longer reserved')
  t.same((await readdir(dir)).filter((name) => name !== '.metadata'), [], 'no completed file')
  t.equal(done.calls.length, 0)
  t.equal(failed, undefined, 'the aborted upload reported no error')
})

t.test('parallelUploads: 4 partial uploads and a final one, 64 MiB byte-exact', async (t) => {
  const done = doneRecorder()
  const { app, dir, endpoint } = await startServer(t, { onUploadDone: done.onUploadDone })
  const data = seededBytes(64 * MiB, 4)
  const { upload, exchanges, finished } = track(data, { endpoint, parallelUploads: 4, metadata: { filename: 'parallel.bin' } })
  upload.start()
  await within('the parallel upload', finished, 45_000)

  const creations = exchanges.filter((exchange) => exchange.method === 'POST')
  t.equal(creations.length, 5, 'four partial uploads and the final one')
  const final = creations.at(-1) as Exchange
  t.equal(final.status, 201)
  const stored = await readFile(join(dir, 'parallel.bin'))
  t.equal(firstDifference(stored, data), -1, 'the final file is byte-exact')
  t.equal(done.calls.length, 1, 'onUploadDone once, for the final upload')
  t.equal(done.calls[0]?.resource.fileSize, data.length)
  const url = upload.url as string
  t.equal(await offsetOf(app, url), data.length)
  t.same(await readdir(join(dir, '.metadata')), [`${uidOfUrl(url)}.json`], 'the partial uploads are gone')
})
