import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { seededBytes } from './helpers.js'
import { runCli } from './cli-runner.js'
import { slowProxy, waitFor, within } from './server.js'

const MiB = 1024 * 1024

t.test('--help and a bad flag: the help on stdout and exit 0, or the reason on stderr and exit 1', async (t) => {
  const help = await runCli(t, ['--help'], { listens: false })
  t.same(await help.exited, { code: 0, signal: null })
  t.match(help.stdout(), /Usage: fastify-tus \[options\][\s\S]*--cors-origin <origin\.\.\.>/)
  const bad = await runCli(t, ['--locker', 'redis'], { listens: false })
  t.same(await bad.exited, { code: 1, signal: null })
  t.match(bad.stderr(), "error: option '--locker <kind>' argument 'redis' is invalid. Allowed choices are memory, file.")
})

t.test('SIGTERM mid-upload: the PATCH is answered, the process exits 0, and after a restart the upload resumes byte-exact', async (t) => {
  const dir = t.testdir()
  const args = ['--dir', dir, '--port', '0', '--host', '127.0.0.1']
  const first = await runCli(t, args)
  t.match(await waitFor('the ready line', () => first.logs.find((line) => line.msg === 'tus server ready')), { dir, endpoint: '/files', page: true, locker: 'memory' })
  const data = seededBytes(8 * MiB, 7)
  const slow = await slowProxy(t, first.port, 4 * MiB)
  let uploadUrl: string | null = null
  const interrupted = new Promise<Error>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `http://127.0.0.1:${slow}/files`,
      metadata: { filename: 'resumed.bin' },
      retryDelays: null,
      onUploadUrlAvailable: () => { uploadUrl = upload.url },
      onSuccess: () => reject(new Error('finished before the server stopped')),
      onError: resolve
    })
    upload.start()
  })
  await waitFor('bytes on disk', async () => uploadUrl !== null && first.logs.some((line) => line.msg === 'upload created') ? true : undefined)
  await new Promise((resolve) => setTimeout(resolve, 300))
  first.kill('SIGTERM')
  t.match((await interrupted).message, /(503|ECONNRESET|socket hang up|closed)/, 'the client hears of it')
  t.same(await within('the process to exit', first.exited, 10_000), { code: 0, signal: null })
  t.ok(first.logs.some((line) => line.msg === 'shutting down: bodies in flight are ended with their bytes kept, answered, and resumable' && line.signal === 'SIGTERM'))
  t.ok(first.logs.some((line) => String(line.msg).startsWith('closed: uploads that were interrupted')))

  const second = await runCli(t, args)
  const resumeUrl = (uploadUrl as unknown as string).replace(`:${slow}/`, `:${second.port}/`)
  const kept = Number((await fetch(resumeUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).headers.get('upload-offset'))
  t.ok(kept > 0 && kept < data.length, `the bytes received before the signal were kept (${kept})`)
  const resumed = new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `http://127.0.0.1:${second.port}/files`,
      uploadUrl: resumeUrl,
      retryDelays: null,
      onSuccess: () => resolve(),
      onError: reject
    })
    upload.start()
  })
  await within('the resumed upload', resumed, 20_000)
  t.ok((await readFile(join(dir, 'resumed.bin'))).equals(data), 'byte-exact')
  t.match(second.logs.filter((line) => line.msg === 'upload completed'), [{ fileName: 'resumed.bin', size: data.length }])
  second.kill('SIGINT')
  t.same(await within('the process to exit', second.exited, 10_000), { code: 0, signal: null })
})
