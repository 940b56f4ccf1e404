// Property-based fuzzing of every tus route with fast-check. Each case is a
// short sequence of requests (tus 1.0 and the IETF draft, every method, good
// and broken headers, URLs, metadata and bodies) sent with app.inject to a
// fresh app, over upload directories put back before every case to a prepared
// state with uploads in every state. For every case:
//   - no answer is a 5xx, app.inject never throws, and nothing ends up as an
//     unhandled rejection or an uncaught exception;
//   - nothing is written, changed or removed outside the upload directories,
//     and these hold only completed files and their state directory;
//   - "bystander" uploads, whose ids no request ever names, keep every byte of
//     their state, and no completed file is ever replaced or removed.
//
// Seeded and reproducible: FUZZ_SEED (an integer, or `random`), FUZZ_RUNS (the
// number of cases), FUZZ_PATH (the `path` fast-check reports, to replay one
// counterexample), FUZZ_VERBOSE (fast-check's verbosity) and FUZZ_DIR (where the
// run's directory goes; default the OS temporary directory). A failure reports the
// shrunk sequence as generated and, in the error's cause, the requests as they were
// sent, with the ids and states of the uploads they name.
import { createHash, getHashes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, type Dirent } from 'node:fs'
import { validateHeaderValue } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import fc from 'fast-check'
import t from 'tap'
import tus, { type FastifyTusOptions } from '../lib/index.js'
import { OCTET, TUS, encodeMetadata, seededBytes } from './helpers.js'

// ---------------------------------------------------------------- configuration

function envInteger (name: string, fallback: number): number {
  const value = process.env[name]
  if (value === undefined || value === '') return fallback
  const parsed = Number(value)
  if (!Number.isSafeInteger(parsed)) throw new Error(`${name} must be an integer, got ${JSON.stringify(value)}`)
  return parsed
}

const SEED = process.env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : envInteger('FUZZ_SEED', 20260525)
const RUNS = envInteger('FUZZ_RUNS', 3000)
const PATH = process.env.FUZZ_PATH === '' ? undefined : process.env.FUZZ_PATH
/** Where the run's directory goes: a tmpfs such as /dev/shm makes long hunts much faster. */
const FUZZ_DIR = process.env.FUZZ_DIR === undefined || process.env.FUZZ_DIR === '' ? tmpdir() : process.env.FUZZ_DIR

const MAX_SIZE = 1024
const EXPIRATION = 86_400_000
/** How long one case may take before it counts as hung. */
const CASE_TIMEOUT = 15_000
/** A request header that carries the path as it would be on the wire (see `caseApp`). */
const RAW_PATH = 'x-fuzz-raw-path'

// the runner's timeout for this file: the runs, and the shrinking of a failure
t.setTimeout(Math.max(180_000, RUNS * 150))

/**
 * The registration: a route param filling a placeholder, a maximum size, an
 * expiration, and hooks that a request's metadata steers: `rename` gives the
 * upload another file name (one more way for a name to try to escape), `refuse`
 * has the creation refused with a 403.
 */
function registration (caseDir: string, completed: string[]): FastifyTusOptions {
  return {
    uploadPath: join(caseDir, 'uploads', '{user}'),
    uploadUrl: '/u/:user/files',
    maxSize: MAX_SIZE,
    expiration: EXPIRATION,
    onUploadCreate: (_request, { metadata }) => {
      if (metadata.refuse !== undefined) throw Object.assign(new Error('refused by onUploadCreate'), { statusCode: 403 })
      return metadata.rename === undefined ? undefined : { metadata: { ...metadata, filename: metadata.rename } }
    },
    onUploadDone: (_request, _resource, filePath) => { completed.push(filePath) },
    onUploadProgress: () => {},
    onUploadTerminate: () => {}
  }
}

/**
 * The app of one case. `app.inject` parses the URL with WHATWG `URL`, which
 * resolves `..`, `%2e%2e` and `\` before the server sees them; a request that
 * carries RAW_PATH is routed by that path instead, exactly as a client sending
 * it over a socket would have it (Fastify's `rewriteUrl` is what runs first).
 */
async function caseApp (caseDir: string, completed: string[]): Promise<FastifyInstance> {
  const app = Fastify({
    rewriteUrl: (request) => {
      const raw = request.headers[RAW_PATH]
      return typeof raw === 'string' ? raw : request.url as string
    }
  })
  await app.register(tus, registration(caseDir, completed))
  await app.ready()
  return app
}

// ---------------------------------------------------------------- the prepared state

/** An upload of the prepared state, or one a sequence created; offset and length as last seen. */
interface Tracked {
  readonly name: string
  readonly uid: string
  /** Its route param, as it goes in a URL. */
  readonly user: string
  offset: number
  length: number | null | undefined
}

/** The uploads that requests address, by index. Their names are only for messages. */
const TARGET_COUNT = 12

const meta = (fileName: string): string => encodeMetadata({ filename: fileName })

/**
 * Fills `dir` with uploads in every state, through the plugin itself: targets
 * that the generated requests address, bystanders that none ever names, and
 * bait next to the upload directories. Returns the uploads and the data files
 * that each case ages past the expiration.
 */
async function prepare (dir: string): Promise<{ targets: Tracked[], bystanders: Tracked[], aged: string[] }> {
  const app = Fastify()
  await app.register(tus, registration(dir, []))
  const add = async (name: string, user: string, headers: Record<string, string>, data = ''): Promise<Tracked> => {
    const draft = headers['upload-draft-interop-version'] !== undefined
    const response = await app.inject({
      method: 'POST',
      url: `/u/${user}/files`,
      headers: draft ? headers : { ...TUS, ...headers, ...(data === '' ? {} : { 'content-type': OCTET }) },
      ...(data === '' ? {} : { payload: data })
    })
    const location = response.headers.location
    if (response.statusCode !== 201 || typeof location !== 'string') throw new Error(`setup: creating ${name} answered ${response.statusCode} ${response.body}`)
    const uid = new URL(location).pathname.split('/').at(-1) as string
    const length = headers['upload-length'] === undefined ? null : Number(headers['upload-length'])
    return { name, uid, user, offset: data.length, length }
  }
  const final = (user: string, ...partials: Tracked[]): string => `final;${partials.map(({ uid }) => `/u/${user}/files/${uid}`).join(' ')}`

  const partial = await add('alice: partial, 2 of 5 bytes', 'alice', { 'upload-length': '5', 'upload-concat': 'partial' }, 'pa')
  const partialDone = await add('alice: complete partial', 'alice', { 'upload-length': '4', 'upload-concat': 'partial' }, 'PART')
  const targets = [
    await add('alice: t0.txt, 4 of 10 bytes', 'alice', { 'upload-length': '10', 'upload-metadata': meta('t0.txt') }, 'abcd'),
    await add('alice: deferred length, 3 bytes', 'alice', { 'upload-defer-length': '1' }, 'abc'),
    await add('alice: completed t2.txt', 'alice', { 'upload-length': '3', 'upload-metadata': meta('t2.txt') }, 'xyz'),
    partial,
    partialDone,
    await add('alice: partial of deferred length, 1 byte', 'alice', { 'upload-defer-length': '1', 'upload-concat': 'partial' }, 'd'),
    { ...await add('alice: final.txt of the two partials, waiting', 'alice', { 'upload-concat': final('alice', partial, partialDone), 'upload-metadata': meta('final.txt') }), length: 9 },
    await add('alice: expired.txt, 5 of 10 bytes, expired', 'alice', { 'upload-length': '10', 'upload-metadata': meta('expired.txt') }, 'abcde'),
    await add('alice: 0 of 6 bytes, no data file yet', 'alice', { 'upload-length': '6' }),
    await add('alice: draft upload of unknown length, 2 bytes', 'alice', { 'upload-draft-interop-version': '8', 'upload-complete': '?0' }, 'dr'),
    await add('bob: b0.txt, 2 of 8 bytes', 'bob', { 'upload-length': '8', 'upload-metadata': meta('b0.txt') }, 'bo'),
    await add('bob: complete partial', 'bob', { 'upload-length': '3', 'upload-concat': 'partial' }, 'BOB')
  ]
  if (targets.length !== TARGET_COUNT) throw new Error('TARGET_COUNT is out of date')

  const bystanderPartial = await add('alice: bystander partial, 1 of 4 bytes', 'alice', { 'upload-length': '4', 'upload-concat': 'partial' }, 'w')
  const bystanderPartialDone = await add('alice: complete bystander partial', 'alice', { 'upload-length': '3', 'upload-concat': 'partial' }, 'xyz')
  const bystanders = [
    await add('alice: reserved.txt, 5 of 10 bytes', 'alice', { 'upload-length': '10', 'upload-metadata': meta('reserved.txt') }, 'hello'),
    await add('alice: completed done.txt', 'alice', { 'upload-length': '4', 'upload-metadata': meta('done.txt') }, 'DONE'),
    await add('alice: bystander of deferred length, 2 bytes', 'alice', { 'upload-defer-length': '1' }, 'ab'),
    bystanderPartial,
    bystanderPartialDone,
    await add('alice: final byfinal.txt, waiting', 'alice', { 'upload-concat': final('alice', bystanderPartial, bystanderPartialDone), 'upload-metadata': meta('byfinal.txt') }),
    await add('alice: stale.txt, 3 of 9 bytes, expired', 'alice', { 'upload-length': '9', 'upload-metadata': meta('stale.txt') }, 'old'),
    await add('alice: bystander draft upload, 3 bytes', 'alice', { 'upload-draft-interop-version': '6', 'upload-complete': '?0' }, 'dft'),
    await add('bob: reserved bob.txt, 1 of 6 bytes', 'bob', { 'upload-length': '6', 'upload-metadata': meta('bob.txt') }, 'b'),
    await add('bob: completed bob-done.txt', 'bob', { 'upload-length': '2', 'upload-metadata': meta('bob-done.txt') }, 'ok'),
    await add('carol: 2 of 5 bytes', 'carol', { 'upload-length': '5' }, 'cc')
  ]
  await app.close()

  // bait where a traversing param or id would find state: the record and data of alice's first upload
  const state = join(dir, 'uploads', 'alice', '.metadata')
  const first = targets[0] as Tracked
  mkdirSync(join(dir, '.metadata'))
  for (const suffix of ['.json', '.part']) {
    copyFileSync(join(state, first.uid + suffix), join(dir, '.metadata', first.uid + suffix))
    copyFileSync(join(state, first.uid + suffix), join(dir, `outside${suffix}`))
  }
  writeFileSync(join(dir, 'outside.txt'), 'outside the upload directories')

  const expired = [targets[7] as Tracked, bystanders[6] as Tracked]
  return { targets, bystanders, aged: expired.map(({ user, uid }) => join('uploads', user, '.metadata', `${uid}.part`)) }
}

// ---------------------------------------------------------------- what must not change

/** What in the upload directories a sequence may not touch. */
interface Guard {
  /** Completed files of the prepared state, `<user>/<name>`: never replaced nor removed. */
  readonly completed: ReadonlySet<string>
  readonly bystanderUids: readonly string[]
  /** The bystanders' file name reservations, `<user>/.metadata/<hash>.name`. */
  readonly reservations: ReadonlySet<string>
}

interface Protected {
  /** Everything under the case directory but the upload directories, with content. */
  readonly outside: string[]
  /** The guarded files in the upload directories, with content. */
  readonly kept: string[]
  /** What the upload directories may not hold. */
  readonly problems: string[]
}

// synchronous: much cheaper than promises for the hundreds of small files each case reads and writes
const entries = (dir: string): Dirent[] => readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)
const content = (path: string): string => readFileSync(path).toString('base64')

function guardOf (dir: string, bystanders: readonly Tracked[]): Guard {
  const completed = new Set<string>()
  for (const user of entries(join(dir, 'uploads'))) {
    for (const entry of entries(join(dir, 'uploads', user.name))) {
      if (entry.isFile()) completed.add(`${user.name}/${entry.name}`)
    }
  }
  const reservations = new Set<string>()
  for (const { user, uid } of bystanders) {
    const record = JSON.parse(readFileSync(join(dir, 'uploads', user, '.metadata', `${uid}.json`), 'utf8')) as { fileName: string }
    const name = `${user}/.metadata/${createHash('sha256').update(record.fileName).digest('hex')}.name`
    if (existsSync(join(dir, 'uploads', name))) reservations.add(name)
  }
  return { completed, bystanderUids: bystanders.map(({ uid }) => uid), reservations }
}

function protectedState (caseDir: string, guard: Guard): Protected {
  const outside: string[] = []
  const walk = (dir: string, prefix: string): void => {
    for (const entry of entries(dir)) {
      const relative = prefix + entry.name
      if (relative === 'uploads' && entry.isDirectory()) {
        outside.push('uploads/ (the upload directories)')
      } else if (entry.isDirectory()) {
        outside.push(relative + '/')
        walk(join(dir, entry.name), relative + '/')
      } else {
        outside.push(entry.isFile() ? `${relative} = ${content(join(dir, entry.name))}` : `${relative} (neither file nor directory)`)
      }
    }
  }
  walk(caseDir, '')

  const kept: string[] = []
  const problems: string[] = []
  const uploads = join(caseDir, 'uploads')
  for (const user of entries(uploads)) {
    if (!user.isDirectory()) {
      problems.push(`uploads/${user.name} is no upload directory`)
      continue
    }
    for (const entry of entries(join(uploads, user.name))) {
      const relative = `${user.name}/${entry.name}`
      if (entry.name === '.metadata' && entry.isDirectory()) {
        for (const state of entries(join(uploads, relative))) {
          const path = `${relative}/${state.name}`
          if (!state.isFile()) problems.push(`uploads/${path} is not a file`)
          else if (guard.reservations.has(path) || guard.bystanderUids.some((uid) => state.name.startsWith(`${uid}.`))) kept.push(`${path} = ${content(join(uploads, path))}`)
        }
      } else if (!entry.isFile()) {
        problems.push(`uploads/${relative} is neither a completed file nor the state directory`)
      } else if (guard.completed.has(relative)) {
        kept.push(`${relative} = ${content(join(uploads, relative))}`)
      }
    }
  }
  return { outside, kept, problems }
}

// ---------------------------------------------------------------- generated requests

/** How an upload id in a URL is chosen: an upload of the prepared state or of the sequence, a twisted id, or anything. */
type UidRef =
  | { target: number }
  | { created: number }
  | { mangled: number, how: Mangle }
  | { literal: string }

const MANGLES = ['upper', 'lower', 'short', 'long', 'json', 'part', 'slash', 'nul', 'dots', 'dash', 'space'] as const
type Mangle = typeof MANGLES[number]

function mangle (uid: string, how: Mangle): string {
  switch (how) {
    case 'upper': return uid.toUpperCase()
    case 'lower': return uid.toLowerCase()
    case 'short': return uid.slice(0, 20)
    case 'long': return `${uid}A`
    case 'json': return `${uid}.json`
    case 'part': return `${uid}.part`
    case 'slash': return `${uid}%2F..`
    case 'nul': return `${uid}%00`
    case 'dots': return `${uid.slice(0, 19)}..`
    case 'dash': return `${uid.slice(0, 20)}${uid.endsWith('-') ? '_' : '-'}`
    case 'space': return `${uid.slice(0, 20)}%20`
  }
}

type UrlSpec =
  | { creation: string, slash: boolean }
  /** `user: null` is the upload's own route param */
  | { upload: UidRef, user: string | null, tail: string }
  | { path: string }

type ConcatForm = 'path' | 'absolute' | 'foreign' | 'otherUser' | 'bare' | 'query' | 'dotted'

/** A header value; the objects are filled in when the request is sent. */
type Value =
  | string
  /** the addressed upload's offset as last seen, plus `offset` */
  | { offset: number }
  /** that offset plus the body's size, plus `total` */
  | { total: number }
  /** `<algorithm> <digest of the body>`, or of other bytes */
  | { checksum: string, good: boolean }
  /** `final;` and the URLs of uploads */
  | { concat: UidRef[], form: ConcatForm, separator: string }

const MODS = [
  'pad', 'tab', 'dup', 'dupOther', 'neg', 'float', 'half', 'hex', 'exp', 'plus', 'zeros', 'params',
  'huge', 'long', 'empty', 'latin1', 'upper', 'lower', 'comma', 'spaceIn'
] as const
/** Values that no HTTP parser delivers: a case that holds one is skipped. */
const INVALID_MODS = ['unicode', 'control'] as const
type Mod = typeof MODS[number] | typeof INVALID_MODS[number]

type HeaderSpec = Value | { of: Value, mod: Mod }
type BodySpec = null | { size: number | 'rest' | 'over' | 'max' | 'maxPlus', chunked: boolean }
type Headers = Record<string, HeaderSpec>

interface StepSpec {
  intent: string
  method: string
  url: UrlSpec
  /** The path as sent on the wire, dot segments and all. */
  raw: boolean
  headers: Headers
  body: BodySpec
}

/** A twisted header value; duplicates become two header lines, as Node joins them. */
function applyMod (value: string, mod: Mod): string | string[] {
  switch (mod) {
    case 'pad': return `  ${value}  `
    case 'tab': return `\t${value}`
    case 'dup': return [value, value]
    case 'dupOther': return [value, '1']
    case 'neg': return `-${value}`
    case 'float': return `${value}.0`
    case 'half': return `${value}.5`
    case 'hex': return /^\d+$/.test(value) ? `0x${Number(value).toString(16)}` : `0x${value}`
    case 'exp': return `${value}e0`
    case 'plus': return `+${value}`
    case 'zeros': return `000${value}`
    case 'params': return `${value};a=1;b`
    case 'huge': return value + '9'.repeat(400)
    case 'long': return `${value},${'x'.repeat(9000)}`
    case 'empty': return ''
    case 'latin1': return `${value}\u00e9\u00ff`
    case 'upper': return value.toUpperCase()
    case 'lower': return value.toLowerCase()
    case 'comma': return `${value},`
    case 'spaceIn': return value.replace(/^(.)/, '$1 ')
    case 'unicode': return `${value}\u20ac`
    case 'control': return `${value}\r\n`
  }
}

/** Shrinking tries the first alternative too: the plain value, no header, no body, no twist. */
const CROSS = { withCrossShrink: true }

const modArb: fc.Arbitrary<Mod> = fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...MODS) }, { weight: 1, arbitrary: fc.constantFrom(...INVALID_MODS) })

/** A value, now and then twisted. */
const spec = (value: fc.Arbitrary<Value>): fc.Arbitrary<HeaderSpec> =>
  fc.oneof(CROSS, { weight: 12, arbitrary: value }, { weight: 1, arbitrary: fc.record({ of: value, mod: modArb }) })

const safeEncode = (text: string): string => {
  try {
    return encodeURIComponent(text)
  } catch {
    return text.replace(/[^\x21-\x7e]/gu, '_')
  }
}

const USERS = [
  'alice', 'bob', 'carol', 'dave', '', '.', '..', '...', '%2e%2e', '%2E', '.%2e', '%2F', 'a%2Fb', '..%2F..', '..%2Falice',
  '%2e%2e%2Falice', '%00', 'a%00b', '%5C', '..%5C..', 'a\\b', '\\', '%0A', '%0D%0A', '%09', '%7F', '%C2%85', '%C2%9B', '%1B',
  '%C3%A9', '%E2%82%AC', '%F0%9F%98%80', '%EF%BC%8F', '%E2%88%95', '%ZZ', '%', '%C3', '%ED%A0%80', ' ', '%20', '%20..%20', '.metadata',
  'a.b', 'ALICE', 'alice%20', '~', ':user', 'alice;x', '*', 'u', 'files', 'x'.repeat(255), 'x'.repeat(256), '%C3%A9'.repeat(128)
]
const userArb: fc.Arbitrary<string> = fc.oneof(
  CROSS,
  { weight: 20, arbitrary: fc.constant('alice') },
  { weight: 5, arbitrary: fc.constant('bob') },
  { weight: 3, arbitrary: fc.constantFrom(...USERS) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map(safeEncode) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }
)

const UID_LITERALS = [
  '', '.', '..', '%2e%2e', '...', 'AAAAAAAAAAAAAAAAAAAAA', '.metadata', '..%2F..%2F..%2Foutside', '..%2F..%2Foutside',
  '%2e%2e%2F%2e%2e%2Foutside', '.%2F.%2F.%2F..%2F.%2F..%2Foutside', '..%5C..%5Coutside', '%00', '%00AAAAAAAAAAAAAAAAAAAA',
  'AAAAAAAAAAAAAAAAAAA..', '%ZZ', '%', 'x'.repeat(300), '%C3%A9'.repeat(21), 'files', '*', '__proto__', 'constructor'
]
const uidRef: fc.Arbitrary<UidRef> = fc.oneof(
  CROSS,
  { weight: 8, arbitrary: fc.record({ target: fc.nat({ max: TARGET_COUNT - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ created: fc.nat({ max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ mangled: fc.nat({ max: TARGET_COUNT - 1 }), how: fc.constantFrom(...MANGLES) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      literal: fc.oneof(
        fc.constantFrom(...UID_LITERALS),
        fc.stringMatching(/^[A-Za-z0-9_-]{21}$/),
        fc.string({ unit: 'grapheme', maxLength: 22 }).map(safeEncode)
      )
    })
  }
)

const creationUrl: fc.Arbitrary<UrlSpec> = fc.record({ creation: userArb, slash: fc.boolean() })
const uploadUrl: fc.Arbitrary<UrlSpec> = fc.record({
  upload: uidRef,
  user: fc.oneof(CROSS, { weight: 8, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: userArb }),
  tail: fc.oneof(CROSS, { weight: 12, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('/', '?x=1', '/x', '%2F', '/..', '/.', '#x', ';x') })
})
const OTHER_PATHS = [
  '/', '/u', '/u/', '/u/alice', '/u/alice/', '/u//files', '/u//files/', '/u/alice/files/a/b', '/uploads', '/uploads/',
  '/u/alice/FILES', '/U/alice/files', '//u/alice/files', '/u/alice/files//', '/u/alice/files/..', '/u/alice/files/../../..',
  '*', '/u/alice/files?uid=x', '/u/alice/files/%2e%2e/%2e%2e', '/u/%2e%2e/files', '/u/../files', '/u/alice/files/../../../outside.txt'
]
const anyUrl: fc.Arbitrary<UrlSpec> = fc.oneof(
  { weight: 3, arbitrary: creationUrl },
  { weight: 4, arbitrary: uploadUrl },
  { weight: 1, arbitrary: fc.record({ path: fc.constantFrom(...OTHER_PATHS) }) }
)
const rawArb = fc.oneof(CROSS, { weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })

const METHODS = ['OPTIONS', 'HEAD', 'GET', 'POST', 'PATCH', 'DELETE', 'PUT'] as const
const methodArb = fc.constantFrom(...METHODS)

const NUMBER_LITERALS = [
  '0', '1', '2', '10', '1023', '1024', '1025', '4294967296', '9007199254740991', '9007199254740992', '9999999999999999',
  '10000000000000000', '99999999999999999999', '-1', '-0', '+1', '1.0', '0.5', '1e3', '0x10', '010', '00', ' 3', '3 ',
  '3,3', '3, 4', '', ' ', 'abc', 'NaN', 'Infinity', '3;a=1', '?1', '1_000', '\u0663'
]
const numberValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 24 }).map(String) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_LITERALS) },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.maxSafeNat(), fc.double()).map(String) }
)
const smallDelta = fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) })
const offsetValue: fc.Arbitrary<Value> = fc.oneof({ weight: 5, arbitrary: fc.record({ offset: smallDelta }) }, { weight: 2, arbitrary: numberValue })
const lengthValue: fc.Arbitrary<Value> = fc.oneof({ weight: 3, arbitrary: numberValue }, { weight: 2, arbitrary: fc.record({ total: smallDelta }) })
const deferValue: fc.Arbitrary<Value> = fc.oneof({ weight: 6, arbitrary: fc.constant('1') }, { weight: 1, arbitrary: fc.constantFrom('0', '2', 'true', '', '01', '1, 1', '?1') })
const tusResumable: fc.Arbitrary<HeaderSpec> = spec(fc.oneof(
  { weight: 25, arbitrary: fc.constant('1.0.0') },
  { weight: 1, arbitrary: fc.constantFrom('1.0', '0.2.2', '1.0.0, 1.0.0', '', '1.0.1', 'v1.0.0', '1.0.0;q=1') }
))

const FILE_NAMES = [
  'a.txt', 'new.bin', '../x.txt', '../../../outside.txt', '/abs/path', '..', '.', '.metadata', '', '/', 'dir/', 'a/..', ' .. ',
  '.\0.', 'nul\0byte.txt', 'line\nbreak.txt', '\x1b[31mred.txt', 'c1\u0085\u009b.txt', '..\\..\\win.ini', 'C:\\evil.dll',
  'a\u2215b.txt', '..\uff0f..\uff0fy.txt', 'a'.repeat(300), '\u00e9'.repeat(200) + '.txt', '\u{1f600}.png', '.'.repeat(300),
  'reserved.txt', 'done.txt', 'stale.txt', 'byfinal.txt', 'bob.txt', 'bob-done.txt', 't0.txt', 't2.txt', 'final.txt',
  'expired.txt', 'outside.txt', 'uploads', 'alice', '\ufffd'
]
const fileNameArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FILE_NAMES) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) }
)
const base64 = (text: string): string => Buffer.from(text).toString('base64')
const metadataValue: fc.Arbitrary<Value> = fc.record({
  pairs: fc.array(fc.tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('filename', 'filename', 'filetype', 'name', 'rename') },
      {
        weight: 2,
        arbitrary: fc.constantFrom('', ' ', 'a b', 'a,b', '__proto__', 'constructor', 'toString', 'FILENAME', 'filename ', '\u00e9', 'k'.repeat(100), 'refuse')
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }
    ),
    fc.oneof(
      { weight: 6, arbitrary: fileNameArb.map(base64) },
      { weight: 1, arbitrary: fc.constant(null) },
      { weight: 2, arbitrary: fc.constantFrom('YQ', 'YQ=', 'Y', '====', 'a b', '!!!!', 'YWJj\u00e9', 'YWJj ', 'YW Jj', 'YWJj=', 'YQ==YQ==', '-_-_') },
      { weight: 1, arbitrary: fc.base64String({ maxLength: 12 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('base64')) }
    )
  ), { maxLength: 4 }),
  separator: fc.constantFrom(',', ',', ',', ', ', ' , ', ',,')
}).map(({ pairs, separator }) => pairs.map(([key, value]) => value === null ? key : `${key} ${value}`).join(separator))

const checksumValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ checksum: fc.constantFrom('sha1', 'md5', 'sha256', 'sha512'), good: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ checksum: fc.constantFrom('SHA1', 'crc32', 'sha-1', 'sha384', 'Sha256', ''), good: fc.constant(true) }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('sha1', 'sha1 ', 'sha1  2jmj7l5rSw0yVb/vlWAYkK/YBwk=', ' sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=', 'sha1 2jmj7l5rSw0yVb_vlWAYkK_YBwk',
      'sha1 ===', 'sha1 !!', 'md5 1B2M2Y8AsgTpgAmY7PhCfg==, md5 1B2M2Y8AsgTpgAmY7PhCfg==', `sha1 ${'A'.repeat(5000)}`, '')
  }
)
const concatValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ concat: fc.array(uidRef, { minLength: 1, maxLength: 3 }), form: fc.constantFrom<ConcatForm>('path', 'path', 'path', 'absolute', 'foreign', 'otherUser', 'bare', 'query', 'dotted'), separator: fc.constantFrom(' ', ' ', '  ', '\t') }) },
  { weight: 1, arbitrary: fc.constant('partial') },
  {
    weight: 1,
    arbitrary: fc.constantFrom('final;', 'final; ', 'final;http://[', 'final;http://%', 'final;%', 'final;/u/alice/files/', 'final;;', 'final',
      'partial;x', 'Partial', `final;${'/x '.repeat(2000)}`, 'final;\u00e9', 'final;file:///etc/passwd', 'final;javascript:1')
  }
)
const contentTypeValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(OCTET) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('APPLICATION/OFFSET+OCTET-STREAM', `${OCTET}; charset=utf-8`, `${OCTET} ;x`, `${OCTET}x`, 'application/partial-upload',
      'application/partial-upload; x=1', 'application/octet-stream', 'text/plain', 'application/json', 'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded', '', '*/*', ` ${OCTET}`)
  }
)
const partialUploadValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/partial-upload') },
  { weight: 2, arbitrary: contentTypeValue },
  { weight: 1, arbitrary: fc.constantFrom('Application/Partial-Upload', 'application/partial-upload ;a=b', 'application/partial-uploadx') }
)
const versionValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('5', '6', '8') },
  { weight: 1, arbitrary: fc.constantFrom('7', '4', '9', '0', '', '05', '8.0', ' 8', '8 ', '8, 8', '-1', 'draft-8', '99999999999999999999') }
)
const completeValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('?1', '?0') },
  { weight: 1, arbitrary: fc.constantFrom('?1;x=1', '?0;a', '?', '1', '0', 'true', '?2', '?1, ?0', '?1 ', '?T', '', '?0;') }
)
const overrideValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('PATCH', 'HEAD', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('POST', 'GET', 'OPTIONS', 'PUT', 'patch', 'PATCH, PATCH', '', 'PATCH ', 'TRACE') }
)
const dispositionValue: fc.Arbitrary<Value> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom('attachment; filename="../../x.txt"', "attachment; filename*=UTF-8''..%2F..%2Fy.txt", 'attachment; filename=done.txt',
      "attachment; filename*=UTF-8''%E0%A4%A", 'attachment; filename="a\\"b.txt"', 'inline', 'attachment; filename=".metadata"',
      "attachment; filename*=UTF-8''%00x", 'attachment; filename=', 'attachment; filename="', `attachment; filename="${'n'.repeat(400)}"`)
  },
  { weight: 1, arbitrary: fileNameArb.map((name) => `attachment; filename*=UTF-8''${safeEncode(name)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((name) => `attachment; filename="${name}"`) }
)
const valueOf: Record<string, fc.Arbitrary<HeaderSpec>> = {
  'tus-resumable': tusResumable,
  'upload-length': spec(lengthValue),
  'upload-offset': spec(offsetValue),
  'upload-defer-length': spec(deferValue),
  'upload-metadata': spec(metadataValue),
  'upload-checksum': spec(checksumValue),
  'upload-concat': spec(concatValue),
  'content-type': spec(contentTypeValue),
  'upload-draft-interop-version': spec(versionValue),
  'upload-complete': spec(completeValue),
  'upload-limit': spec(fc.constantFrom('max-size=10', 'min-size=0, max-size=1', '', 'garbage', 'max-age=1')),
  'x-http-method-override': spec(overrideValue),
  'content-disposition': spec(dispositionValue),
  trailer: spec(fc.constantFrom('Upload-Checksum', 'upload-checksum, expires', 'Expires', '', 'upload-checksum ,x')),
  host: spec(fc.constantFrom('localhost:80', 'example.com', 'EXAMPLE.com:8080', '[::1]:3000', 'a:b:c', '', 'localhost:80, evil.example')),
  'x-forwarded-host': spec(fc.constantFrom('evil.example', '')),
  expect: spec(fc.constantFrom('100-continue', 'nonsense'))
}
const HEADER_NAMES = Object.keys(valueOf)

/** Headers an intent always sends, or may send (`present` against `absent`). */
const has = (name: string, value = valueOf[name] as fc.Arbitrary<HeaderSpec>): fc.Arbitrary<Headers> => value.map((spec) => ({ [name]: spec }))
const maybe = (name: string, present = 1, absent = 1, value?: fc.Arbitrary<HeaderSpec>): fc.Arbitrary<Headers> =>
  fc.oneof(CROSS, { weight: absent, arbitrary: fc.constant({}) }, { weight: present, arbitrary: has(name, value) })
const headerSet = (...parts: Array<fc.Arbitrary<Headers>>): fc.Arbitrary<Headers> =>
  fc.tuple(...parts).map((sets) => Object.assign({}, ...sets) as Headers)

/** Any header added, replaced or removed (`null`), after what the intent sends. */
const edit = fc.oneof(...HEADER_NAMES.map((name) => fc.record({
  name: fc.constant(name),
  value: fc.oneof({ weight: 3, arbitrary: valueOf[name] as fc.Arbitrary<HeaderSpec> }, { weight: 1, arbitrary: fc.constant(null) })
})))

const someEdits = fc.oneof(CROSS, { weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(edit, { minLength: 1, maxLength: 2 }) })

const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 40 }) },
  { weight: 4, arbitrary: fc.constantFrom<'rest' | 'over' | 'max' | 'maxPlus'>('rest', 'rest', 'rest', 'over', 'max', 'maxPlus') }
)
const someBody: fc.Arbitrary<BodySpec> = fc.record({ size: sizeArb, chunked: fc.oneof(CROSS, { weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) })
const bodyArb = (withBody: number, without: number): fc.Arbitrary<BodySpec> =>
  fc.oneof(CROSS, { weight: without, arbitrary: fc.constant(null) }, { weight: withBody, arbitrary: someBody })

/** A request with a purpose: its method, URL, headers and body as that purpose wants, now and then twisted. */
function intent (
  name: string, method: fc.Arbitrary<string>, url: fc.Arbitrary<UrlSpec>, headers: fc.Arbitrary<Headers>, body: fc.Arbitrary<BodySpec>, edits = someEdits
): fc.Arbitrary<StepSpec> {
  return fc.record({
    method: fc.oneof(CROSS, { weight: 20, arbitrary: method }, { weight: 1, arbitrary: methodArb }),
    url,
    raw: rawArb,
    headers,
    edits,
    body
  }).map(({ headers, edits, ...step }) => {
    const edited: Headers = { ...headers }
    for (const { name, value } of edits) {
      if (value === null) delete edited[name]
      else edited[name] = value
    }
    return { intent: name, ...step, headers: edited }
  })
}

const stepArb: fc.Arbitrary<StepSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: intent('tus creation', fc.constant('POST'), creationUrl, headerSet(
      has('tus-resumable'),
      fc.oneof(
        { weight: 6, arbitrary: has('upload-length') },
        { weight: 2, arbitrary: has('upload-defer-length') },
        { weight: 1, arbitrary: headerSet(has('upload-length'), has('upload-defer-length')) },
        { weight: 1, arbitrary: fc.constant({}) }
      ),
      maybe('upload-metadata', 2),
      maybe('upload-concat', 1, 3, spec(fc.constant('partial'))),
      maybe('content-type', 3),
      maybe('upload-checksum', 1),
      maybe('x-http-method-override', 1, 10)
    ), bodyArb(2, 3))
  },
  {
    weight: 2,
    arbitrary: intent('tus final upload', fc.constant('POST'), creationUrl, headerSet(
      has('tus-resumable'),
      has('upload-concat', spec(concatValue)),
      maybe('upload-metadata', 1),
      maybe('upload-length', 1, 5),
      maybe('content-type', 1, 5)
    ), bodyArb(1, 6))
  },
  {
    weight: 6,
    arbitrary: intent('tus append', fc.constant('PATCH'), uploadUrl, headerSet(
      has('tus-resumable'),
      has('content-type'),
      has('upload-offset'),
      maybe('upload-length', 1, 3),
      maybe('upload-checksum', 1, 2),
      maybe('trailer', 1, 8)
    ), bodyArb(6, 1))
  },
  { weight: 2, arbitrary: intent('tus offset', fc.constant('HEAD'), uploadUrl, has('tus-resumable'), bodyArb(1, 12)) },
  { weight: 2, arbitrary: intent('tus termination', fc.constant('DELETE'), uploadUrl, has('tus-resumable'), bodyArb(1, 12)) },
  {
    weight: 2,
    arbitrary: intent('method override', fc.constant('POST'), uploadUrl, headerSet(
      has('tus-resumable'),
      has('x-http-method-override'),
      maybe('content-type', 2),
      maybe('upload-offset', 2)
    ), bodyArb(2, 2))
  },
  { weight: 1, arbitrary: intent('options', fc.constant('OPTIONS'), anyUrl, headerSet(maybe('upload-draft-interop-version', 1), maybe('tus-resumable', 1)), bodyArb(1, 8)) },
  { weight: 1, arbitrary: intent('get', fc.constant('GET'), anyUrl, maybe('tus-resumable', 3), bodyArb(1, 8)) },
  {
    weight: 3,
    arbitrary: intent('draft creation', fc.constant('POST'), creationUrl, headerSet(
      has('upload-draft-interop-version'),
      has('upload-complete'),
      maybe('upload-length', 1),
      maybe('upload-metadata', 1),
      maybe('content-disposition', 1, 2),
      maybe('content-type', 1, 2)
    ), bodyArb(3, 2))
  },
  {
    weight: 4,
    arbitrary: intent('draft append', fc.constant('PATCH'), uploadUrl, headerSet(
      has('upload-draft-interop-version'),
      has('upload-offset'),
      has('upload-complete'),
      maybe('content-type', 8, 1, spec(partialUploadValue)),
      maybe('upload-length', 1, 3)
    ), bodyArb(6, 1))
  },
  {
    weight: 2,
    arbitrary: intent('draft offset or cancellation', fc.constantFrom('HEAD', 'DELETE'), uploadUrl, headerSet(
      has('upload-draft-interop-version'),
      maybe('upload-offset', 1, 4),
      maybe('upload-complete', 1, 4),
      maybe('upload-length', 1, 4)
    ), bodyArb(1, 12))
  },
  {
    weight: 1,
    arbitrary: intent('draft method override', fc.constant('POST'), uploadUrl, headerSet(
      has('upload-draft-interop-version'),
      has('x-http-method-override'),
      maybe('upload-offset', 2),
      maybe('upload-complete', 2),
      maybe('content-type', 2, 1, spec(partialUploadValue))
    ), bodyArb(2, 2))
  },
  { weight: 2, arbitrary: intent('anything', methodArb, anyUrl, fc.constant({}), bodyArb(1, 2), fc.array(edit, { minLength: 1, maxLength: 6 })) }
)

// not `minLength: 1`: an array shrinks its tail only down to its minimum length
const sequenceArb = fc.array(stepArb, { maxLength: 6 }).filter((steps) => steps.length > 0)

// ---------------------------------------------------------------- sending a sequence

/** The uploads of one case, as the requests of its sequence leave them. */
class Uploads {
  readonly targets: Tracked[]
  readonly created: Tracked[] = []

  constructor (targets: readonly Tracked[]) {
    this.targets = targets.map((target) => ({ ...target }))
  }

  /** The id a reference names in a URL, the route param of its upload, and the upload if there is one. */
  locate (ref: UidRef): { segment: string, home: string, upload?: Tracked } {
    if ('target' in ref || 'mangled' in ref) {
      const upload = this.targets['target' in ref ? ref.target : ref.mangled] as Tracked
      return 'target' in ref ? { segment: upload.uid, home: upload.user, upload } : { segment: mangle(upload.uid, ref.how), home: upload.user }
    }
    if ('created' in ref) {
      // before the sequence created one: a target
      const upload = this.created.length === 0 ? this.targets[ref.created % this.targets.length] as Tracked : this.created[ref.created % this.created.length] as Tracked
      return { segment: upload.uid, home: upload.user, upload }
    }
    return { segment: ref.literal, home: 'alice' }
  }
}

interface Request {
  readonly options: InjectOptions
  /** The request as sent, for messages. */
  readonly line: string
  readonly upload: Tracked | undefined
  /** The length a creation declares. */
  readonly declared: number | null | undefined
}

/** A header value, shortened for messages. */
const shown = (value: unknown): string => JSON.stringify(value, (_key, item: unknown) =>
  typeof item === 'string' && item.length > 60 ? `${item.slice(0, 40)}…(${item.length} chars)` : item)

function digest (algorithm: string, data: Buffer): string {
  const known = getHashes().includes(algorithm.toLowerCase()) ? algorithm.toLowerCase() : 'sha1'
  return createHash(known).update(data).digest('base64')
}

/** The request a step makes, given the uploads so far; `undefined` when it cannot be sent over HTTP. */
function resolve (step: StepSpec, uploads: Uploads, index: number): Request | undefined {
  let path: string
  let user = 'alice'
  let upload: Tracked | undefined
  if ('creation' in step.url) {
    user = step.url.creation
    path = `/u/${user}/files${step.url.slash ? '/' : ''}`
  } else if ('upload' in step.url) {
    const located = uploads.locate(step.url.upload)
    user = step.url.user ?? located.home
    upload = located.upload
    path = `/u/${user}/files/${located.segment}${step.url.tail}`
  } else {
    path = step.url.path
  }

  const offset = upload?.offset ?? 0
  const declared = 'creation' in step.url ? declaredLength(step.headers) : upload?.length
  const size = bodySize(step.body, offset, declared)
  const data = seededBytes(size ?? 0, index + 1)

  const resolveValue = (value: Value): string => {
    if (typeof value === 'string') return value
    if ('offset' in value) return String(offset + value.offset)
    if ('total' in value) return String(offset + (size ?? 0) + value.total)
    if ('checksum' in value) return `${value.checksum} ${digest(value.checksum || 'sha1', value.good ? data : Buffer.concat([data, Buffer.from('!')]))}`
    const urls = value.concat.map((ref) => {
      const { segment } = uploads.locate(ref)
      const resource = `/u/${user}/files/${segment}`
      switch (value.form) {
        case 'path': return resource
        case 'absolute': return `http://localhost:80${resource}`
        case 'foreign': return `https://elsewhere.example${resource}`
        case 'otherUser': return `/u/${user === 'bob' ? 'alice' : 'bob'}/files/${segment}`
        case 'bare': return segment
        case 'query': return `${resource}?a=b`
        case 'dotted': return `/u/${user}/files/../files/${segment}`
      }
      return resource
    })
    return `final;${urls.join(value.separator)}`
  }
  const headers: Record<string, string | string[]> = {}
  for (const [name, header] of Object.entries(step.headers)) {
    headers[name] = typeof header === 'object' && 'of' in header ? applyMod(resolveValue(header.of), header.mod) : resolveValue(header)
  }

  let payload: InjectOptions['payload']
  if (size !== undefined && step.body?.chunked === true) {
    payload = Readable.from([data.subarray(0, size >> 1), data.subarray(size >> 1)].filter((chunk) => chunk.length > 0))
    headers['transfer-encoding'] = 'chunked'
  } else if (size !== undefined) {
    payload = data
  }

  // a real client cannot send what an HTTP parser refuses: such a case is skipped
  for (const [name, value] of Object.entries(headers)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      try {
        validateHeaderValue(name, item)
      } catch {
        return undefined
      }
    }
  }
  let url = path
  if (step.raw) {
    // what a client puts on the wire: no space, control or non-ASCII character, no fragment
    const raw = path.replace(/[^\x21-\x7e]|#/gu, (char) => safeEncode(char))
    headers[RAW_PATH] = raw
    url = '/'
    path = raw
  } else {
    try {
      // eslint-disable-next-line no-new -- only whether inject can parse it
      new URL(path, 'http://localhost')
    } catch {
      return undefined
    }
  }

  const body = size === undefined ? 'no body' : `${size} bytes${step.body?.chunked === true ? ', chunked' : ''}`
  const { [RAW_PATH]: _raw, ...sentHeaders } = headers
  const line = `${step.method} ${path}${step.raw ? ' (as sent on the wire)' : ''} ${shown(sentHeaders)} ${body}`
  return {
    options: { method: step.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) },
    line,
    upload,
    declared
  }
}

/** The length a creation declares, when it is plain: `null` for a deferred one. */
function declaredLength (headers: Headers): number | null | undefined {
  const length = headers['upload-length']
  if (typeof length === 'string' && /^\d{1,15}$/.test(length)) return Number(length)
  return headers['upload-defer-length'] === undefined ? undefined : null
}

function bodySize (body: BodySpec, offset: number, length: number | null | undefined): number | undefined {
  if (body === null) return undefined
  const rest = Math.max(0, Math.min(MAX_SIZE + 1, (length ?? offset + 7) - offset))
  switch (body.size) {
    case 'rest': return rest
    case 'over': return rest + 1 + (offset % 3)
    case 'max': return MAX_SIZE
    case 'maxPlus': return MAX_SIZE + 1
    default: return body.size
  }
}

/** Notes what an answer says of the upload it was about: a new one, its offset, its length. */
function track (uploads: Uploads, request: Request, response: LightMyRequestResponse): void {
  let upload = request.upload
  const location = response.headers.location
  if (response.statusCode === 201 && typeof location === 'string') {
    // the path, whatever the Host header made of the origin
    const segments = location.replace(/^[a-z][a-z\d+.-]*:\/\/[^/]*/i, '').split(/[?#]/)[0]?.split('/') ?? []
    const uid = segments.at(-1) as string
    if (uid !== upload?.uid) {
      upload = { name: `created ${uploads.created.length}`, uid, user: segments.at(-3) ?? 'alice', offset: 0, length: request.declared }
      uploads.created.push(upload)
    }
  }
  if (upload === undefined) return
  const offset = Number(response.headers['upload-offset'] ?? Number.NaN)
  if (Number.isSafeInteger(offset)) upload.offset = offset
  const length = Number(response.headers['upload-length'] ?? Number.NaN)
  if (Number.isSafeInteger(length)) upload.length = length
}

// ---------------------------------------------------------------- the property

t.test(`fuzz: ${RUNS} request sequences never get a 5xx, never write outside, never touch another upload`, async (t) => {
  // a directory of this run's own (not t.testdir, whose path is the same for every
  // run of this file): two runs at once, a hunt with FUZZ_SEED next to `npm test`, never share it
  const root = mkdtempSync(join(FUZZ_DIR, 'fastify-tus-fuzz-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const caseDir = join(root, 'case')
  mkdirSync(caseDir)
  const { targets, bystanders, aged } = await prepare(caseDir)
  const guard = guardOf(caseDir, bystanders)
  const expected = protectedState(caseDir, guard)
  t.same(expected.problems, [], 'the prepared state is sound')
  t.ok(expected.kept.length > 20, 'bystanders and completed files are guarded')
  const prepared = readTree(caseDir)

  const processErrors: unknown[] = []
  const onProcessError = (error: unknown): void => { processErrors.push(error) }
  process.on('uncaughtException', onProcessError)
  process.on('unhandledRejection', onProcessError)
  t.teardown(() => {
    process.off('uncaughtException', onProcessError)
    process.off('unhandledRejection', onProcessError)
  })

  const stats = { cases: 0, skipped: 0, requests: 0, completions: 0, statuses: new Map<number, number>() }
  const runCase = async (steps: StepSpec[]): Promise<void> => {
    stats.cases++
    const long = new Date(Date.now() - 2 * EXPIRATION)
    for (const path of aged) utimesSync(join(caseDir, path), long, long)
    const completed: string[] = []
    const app = await caseApp(caseDir, completed)
    const uploads = new Uploads(targets)
    const sent: string[] = []
    const fail = (problem: string): Error => new Error([
      problem,
      'requests sent:',
      ...sent.map((line, index) => `  ${index + 1}. ${line}`),
      'targets:',
      ...targets.map(({ name, uid }, index) => `  ${index}. ${uid} ${name}`)
    ].join('\n'))
    try {
      for (const [index, step] of steps.entries()) {
        const request = resolve(step, uploads, index)
        if (request === undefined) stats.skipped++
        fc.pre(request !== undefined)
        sent.push(request.line)
        let response: LightMyRequestResponse
        try {
          response = await app.inject(request.options)
        } catch (error) {
          throw fail(`app.inject threw on request ${index + 1}: ${(error as Error).stack ?? String(error)}`)
        }
        stats.requests++
        stats.statuses.set(response.statusCode, (stats.statuses.get(response.statusCode) ?? 0) + 1)
        sent[index] += ` → ${response.statusCode}`
        if (response.statusCode >= 500) throw fail(`request ${index + 1} answered ${response.statusCode}: ${response.body}`)
        track(uploads, request, response)
      }
      await new Promise((resolve) => setImmediate(resolve))
      if (processErrors.length > 0) {
        const errors = processErrors.splice(0).map((error) => (error as Error).stack ?? String(error))
        throw fail(`unhandled rejection or uncaught exception:\n${errors.join('\n')}`)
      }
      const uploadDirs = join(caseDir, 'uploads')
      const misplaced = completed.filter((filePath) => dirname(dirname(filePath)) !== uploadDirs)
      if (misplaced.length > 0) throw fail(`onUploadDone got files outside an upload directory: ${misplaced.join(', ')}`)
      const now = protectedState(caseDir, guard)
      const diff = (label: string, before: string[], after: string[]): string[] => [
        ...before.filter((line) => !after.includes(line)).map((line) => `${label} gone or changed: ${line.slice(0, 200)}`),
        ...after.filter((line) => !before.includes(line)).map((line) => `${label} new or changed: ${line.slice(0, 200)}`)
      ]
      const problems = [
        ...now.problems,
        ...diff('outside the upload directories,', expected.outside, now.outside),
        ...diff('guarded upload state (bystander or completed file),', expected.kept, now.kept)
      ]
      const rootEntries = readdirSync(root).join(',')
      if (rootEntries !== 'case') problems.push(`the test directory holds ${rootEntries}`)
      if (problems.length > 0) throw fail(problems.join('\n'))
    } finally {
      stats.completions += completed.length
      await app.close()
      restoreTree(caseDir, prepared)
    }
  }

  t.comment(`fuzz: seed ${SEED}, ${RUNS} runs (repeat with FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}${PATH === undefined ? '' : ` FUZZ_PATH=${PATH}`})`)
  const started = Date.now()
  await fc.assert(fc.asyncProperty(sequenceArb, runCase), {
    seed: SEED,
    numRuns: RUNS,
    timeout: CASE_TIMEOUT,
    verbose: Number(process.env.FUZZ_VERBOSE ?? 0),
    ...(PATH === undefined ? {} : { path: PATH })
  })
  const statuses = [...stats.statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(' ')
  t.comment(`fuzz: ${stats.cases} cases (${stats.skipped} skipped), ${stats.requests} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; statuses ${statuses}`)
  // what the last case's app.close() may have thrown, after the case's own check
  await new Promise((resolve) => setImmediate(resolve))
  t.same(processErrors.map((error) => (error as Error).stack ?? String(error)), [], 'no unhandled rejection or uncaught exception, to the end')
  // the sequences reached real upload states, not only refusals
  t.ok(stats.skipped < stats.cases / 2, `most cases ran (${stats.skipped} of ${stats.cases} skipped)`)
  for (const status of [201, 204, 200]) t.ok((stats.statuses.get(status) ?? 0) > 0, `some requests answered ${status}`)
  t.ok(stats.completions > 0, `some uploads completed (${stats.completions})`)
})

/** A directory tree in memory: directories (parents first) and files with their content. */
interface TreeEntry { readonly path: string, readonly data: Buffer | undefined }

function readTree (dir: string, prefix = ''): TreeEntry[] {
  const tree: TreeEntry[] = []
  for (const entry of entries(join(dir, prefix))) {
    const path = join(prefix, entry.name)
    if (entry.isDirectory()) tree.push({ path, data: undefined }, ...readTree(dir, path))
    else tree.push({ path, data: readFileSync(join(dir, path)) })
  }
  return tree
}

/**
 * Puts `dir` back as `tree` has it: removes what is not in it, rewrites what
 * differs, recreates what is gone. Much cheaper than a fresh copy: creating
 * files is what costs, and a case changes few of them.
 */
function restoreTree (dir: string, tree: readonly TreeEntry[]): void {
  const wanted = new Map(tree.map(({ path, data }) => [path, data]))
  const seen = new Set<string>()
  const walk = (prefix: string): void => {
    for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
      const relative = join(prefix, entry.name)
      const path = join(dir, relative)
      const data = wanted.get(relative)
      if (!wanted.has(relative) || (data === undefined ? !entry.isDirectory() : !entry.isFile())) {
        rmSync(path, { recursive: true, force: true })
        continue
      }
      seen.add(relative)
      if (data === undefined) {
        walk(relative)
      } else if (statSync(path).nlink > 1 || !readFileSync(path).equals(data)) {
        // a new inode: another name may share this one
        rmSync(path)
        writeFileSync(path, data)
      }
    }
  }
  walk('')
  for (const { path, data } of tree) {
    if (seen.has(path)) continue
    if (data === undefined) mkdirSync(join(dir, path))
    else writeFileSync(join(dir, path), data)
  }
}
