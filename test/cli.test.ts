import { PassThrough } from 'node:stream'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CommanderError } from 'commander'
import Fastify from 'fastify'
import t from 'tap'
import { parseCommandLine, type ServerSettings } from '../lib/cli/command-line.js'
import { buildServer } from '../lib/cli/server.js'
import { parseDuration, parseSize } from '../lib/cli/units.js'
import { corsAllowedHeaders, corsExposedHeaders } from '../lib/index.js'
import { fastifyTusPage, uploadPage } from '../lib/page/index.js'
import { TUS, createUpload, patchUpload } from './helpers.js'

t.test('sizes and durations, with or without a unit', async (t) => {
  t.equal(parseSize('1024'), 1024)
  t.equal(parseSize('5GiB'), 5 * 2 ** 30)
  t.equal(parseSize('1.5 gb'), 1.5e9)
  t.equal(parseSize('512MiB'), 512 * 2 ** 20)
  t.equal(parseDuration('90000'), 90_000)
  t.equal(parseDuration('90s'), 90_000)
  t.equal(parseDuration('30m'), 1_800_000)
  t.equal(parseDuration('24h'), 86_400_000)
  t.equal(parseDuration('7d'), 604_800_000)
  for (const bad of ['', 'ten', '-5', '0', '5 parsecs', '1e3', '99999999999999999999']) {
    t.throws(() => parseSize(bad), RangeError, `size ${JSON.stringify(bad)}`)
  }
  t.throws(() => parseDuration('5 fortnights'), /is not a duration such as/)
})

/** Parses a command line, keeping what commander would print. */
function parse (argv: string[]): { settings?: ServerSettings, error?: CommanderError, out: string, err: string } {
  let out = ''
  let err = ''
  try {
    const settings = parseCommandLine(argv, { writeOut: (text) => { out += text }, writeErr: (text) => { err += text } })
    return { settings, out, err }
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error
    return { error, out, err }
  }
}

t.test('the command line: defaults, every flag, and refusals that say why', async (t) => {
  const saved = { PORT: process.env.PORT, HOST: process.env.HOST, LOG_LEVEL: process.env.LOG_LEVEL }
  delete process.env.PORT
  delete process.env.HOST
  delete process.env.LOG_LEVEL
  t.teardown(() => Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, value]) => value !== undefined))))

  t.same(parse([]).settings, {
    dir: './uploads',
    port: 1080,
    host: '0.0.0.0',
    basePath: '/files',
    maxSize: undefined,
    expiration: undefined,
    cleanupInterval: 3_600_000,
    corsOrigins: [],
    trustProxy: false,
    locker: 'memory',
    logLevel: 'info',
    page: true
  })
  t.same(parse([
    '--dir', '/srv/uploads', '--port', '8080', '--host', '127.0.0.1', '--base-path', '/api/uploads/', '--max-size', '10GiB',
    '--expiration', '24h', '--cleanup-interval', '10m', '--cors-origin', 'https://a.example', 'https://b.example',
    '--trust-proxy', '--locker', 'file', '--log-level', 'debug', '--no-page'
  ]).settings, {
    dir: '/srv/uploads',
    port: 8080,
    host: '127.0.0.1',
    basePath: '/api/uploads',
    maxSize: 10 * 2 ** 30,
    expiration: 86_400_000,
    cleanupInterval: 600_000,
    corsOrigins: ['https://a.example', 'https://b.example'],
    trustProxy: true,
    locker: 'file',
    logLevel: 'debug',
    page: false
  })
  process.env.PORT = '3000'
  t.equal(parse([]).settings?.port, 3000, 'PORT from the environment')
  delete process.env.PORT

  for (const [argv, message] of [
    [['--port', 'http'], /option '-p, --port <number>' argument 'http' is invalid. a port is a number from 0 to 65535/],
    [['--port', '70000'], /a port is a number from 0 to 65535/],
    [['--base-path', 'files'], /a base path is an absolute URL path other than \//],
    [['--base-path', '/'], /a base path is an absolute URL path other than \//],
    [['--max-size', 'huge'], /"huge" is not a size such as/],
    [['--expiration', '3 weeks'], /"3 weeks" is not a duration such as/],
    [['--locker', 'redis'], /Allowed choices are memory, file/],
    [['--log-level', 'loud'], /Allowed choices are fatal, error, warn, info, debug, trace, silent/],
    [['--colour'], /unknown option '--colour'/]
  ] as const) {
    const { error, err } = parse([...argv])
    t.equal(error?.exitCode, 1, `${argv.join(' ')} is refused`)
    t.match(err, message)
    t.match(err, /Usage: fastify-tus \[options\]/, 'with the help after the error')
  }

  const help = parse(['--help'])
  t.equal(help.error?.code, 'commander.helpDisplayed')
  t.equal(help.error?.exitCode, 0)
  for (const flag of ['--dir', '--port', '--host', '--base-path', '--max-size', '--expiration', '--cleanup-interval', '--cors-origin', '--trust-proxy', '--locker', '--log-level', '--no-page', '--version']) {
    t.match(help.out, flag, `--help tells ${flag}`)
  }
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  const shown = parse(['--version'])
  t.equal(shown.out.trim(), version)
  t.equal(shown.error?.exitCode, 0)
})

const settings = (dir: string, more: Partial<ServerSettings> = {}): ServerSettings => ({
  ...parse(['--dir', dir]).settings as ServerSettings,
  ...more
})

/** The log lines the server wrote, parsed. */
function logLines (stream: PassThrough): Array<Record<string, unknown>> {
  const text = String(stream.read() ?? '')
  return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>)
}

t.test('the standalone server: tus on the base path, the page at /, a log line per step of an upload', async (t) => {
  const dir = join(t.testdir(), 'created', 'on', 'start')
  const stream = new PassThrough()
  const app = await buildServer(settings(dir), { stream })
  t.teardown(() => app.close())

  const page = await app.inject({ method: 'GET', url: '/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, '"/files"', 'the page uploads to the base path')
  t.match(page.body, '<script src="/tus.min.js">')
  const script = await app.inject({ method: 'GET', url: '/tus.min.js' })
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.match(script.body, 'tus', "tus-js-client's browser bundle")

  const { response, path } = await createUpload(app, { 'upload-length': '5', 'upload-metadata': `filename ${Buffer.from('hello.txt').toString('base64')}` }, '/files')
  t.equal(response.statusCode, 201)
  t.equal((await patchUpload(app, path, 0, 'hello')).statusCode, 204)
  t.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'hello')
  const { path: other } = await createUpload(app, { 'upload-length': '5' }, '/files')
  t.equal((await app.inject({ method: 'DELETE', url: other, headers: TUS })).statusCode, 204)

  const lines = logLines(stream)
  const steps = lines.filter((line) => typeof line.upload === 'string')
  t.match(steps, [
    { level: 30, msg: 'upload created', fileName: 'hello.txt', size: 5, metadata: { filename: 'hello.txt' }, reqId: String },
    { level: 30, msg: 'upload completed', fileName: 'hello.txt', size: 5, filePath: join(dir, 'hello.txt') },
    { level: 30, msg: 'upload created', size: 5 },
    { level: 30, msg: 'upload terminated', offset: 0 }
  ])
  t.equal(steps.filter((line) => line.msg === 'upload progress').length, 0, 'progress only at debug level')
})

t.test('progress at debug level; no page with --no-page', async (t) => {
  const stream = new PassThrough()
  const app = await buildServer(settings(t.testdir(), { logLevel: 'debug', page: false }), { stream })
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 404)
  const { path } = await createUpload(app, { 'upload-length': '5' }, '/files')
  await patchUpload(app, path, 0, 'hello')
  t.match(logLines(stream).filter((line) => line.msg === 'upload progress'), [{ level: 20, offset: 5, size: 5 }])
})

t.test('CORS for the origins given, with the header lists the plugin exports; preflights are never guarded', async (t) => {
  const app = await buildServer(settings(t.testdir(), { corsOrigins: ['https://app.example'], logLevel: 'silent' }))
  t.teardown(() => app.close())
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/files',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'tus-resumable, upload-length, upload-metadata' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(preflight.headers['access-control-allow-headers'], corsAllowedHeaders.join(', '))
  t.match(preflight.headers['access-control-allow-methods'], 'PATCH')
  const { response } = await createUpload(app, { 'upload-length': '1', origin: 'https://app.example' }, '/files')
  t.equal(response.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(response.headers['access-control-expose-headers'], corsExposedHeaders.join(', '))
  const stranger = await createUpload(app, { 'upload-length': '1', origin: 'https://evil.example' }, '/files')
  t.equal(stranger.response.headers['access-control-allow-origin'], undefined, 'another origin is not allowed')

  const anyone = await buildServer(settings(t.testdir(), { corsOrigins: ['*'], logLevel: 'silent' }))
  t.teardown(() => anyone.close())
  t.equal((await createUpload(anyone, { 'upload-length': '1', origin: 'https://whoever.example' }, '/files')).response.headers['access-control-allow-origin'], '*')
})

t.test('behind a TLS-terminating proxy (--trust-proxy) the Location is the one the client sees', async (t) => {
  const forwarded = { 'upload-length': '1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'uploads.example.com' }
  const trusting = await buildServer(settings(t.testdir(), { trustProxy: true, logLevel: 'silent' }))
  t.teardown(() => trusting.close())
  t.match((await createUpload(trusting, forwarded, '/files')).response.headers.location, /^https:\/\/uploads\.example\.com\/files\/[\w-]+$/)
  const plain = await buildServer(settings(t.testdir(), { logLevel: 'silent' }))
  t.teardown(() => plain.close())
  t.match((await createUpload(plain, forwarded, '/files')).response.headers.location, /^http:\/\/localhost(:\d+)?\/files\//, 'forwarded headers are ignored without it')
})

t.test('the page in an app of its own, at a path of its choosing, naming an endpoint elsewhere', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyTusPage, { path: '/upload', endpoint: 'https://uploads.example.com/files', title: 'Send us <files>' })
  const page = await app.inject({ method: 'GET', url: '/upload' })
  t.equal(page.statusCode, 200)
  t.match(page.body, '<script src="/upload/tus.min.js">')
  t.match(page.body, '"https://uploads.example.com/files"')
  t.match(page.body, '<title>Send us &#60;files&#62;</title>', 'the title is escaped')
  t.equal((await app.inject({ method: 'GET', url: '/upload/tus.min.js' })).statusCode, 200)
  t.notMatch(uploadPage({ endpoint: '</script><script>alert(1)</script>' }), '</script><script>alert(1)', 'an endpoint cannot end the script')
})

t.test('the size and time flags reach the plugin', async (t) => {
  const app = await buildServer(settings(t.testdir(), { maxSize: 10, expiration: 3_600_000, logLevel: 'silent' }))
  t.teardown(() => app.close())
  const options = await app.inject({ method: 'OPTIONS', url: '/files' })
  t.equal(options.headers['tus-max-size'], '10')
  t.match(options.headers['tus-extension'], 'expiration')
  t.equal((await createUpload(app, { 'upload-length': '11' }, '/files')).response.statusCode, 413)
  const { response } = await createUpload(app, { 'upload-length': '10' }, '/files')
  t.ok(Date.parse(response.headers['upload-expires'] as string) > Date.now() + 3_500_000, 'expires an hour from now')
})
