// The servers measured, and how the client speaks to each: the raw protocol
// (servers/raw-protocol.js) or tus 1.0.
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { send } from './client.js'
import { verifyCount, verifyFile } from './verify.js'

const SERVERS = join(dirname(dirname(fileURLToPath(import.meta.url))), 'servers')
const OFFSET_OCTET_STREAM = 'application/offset+octet-stream'
const TUS = { 'tus-resumable': '1.0.0' }
const SMALL_REQUEST_TIMEOUT_MS = 10_000
/**
 * Where in the pattern each new upload starts: a step that is no multiple of
 * the chunk, so that no two uploads hold the same bytes and a server that mixed
 * up uploads, or moved whole chunks within one, fails the check on disk.
 */
const PATTERN_STEP = 104_729
let uploadsMade = 0
const nextPatternStart = () => ++uploadsMade * PATTERN_STEP

/** A body slower than this is a hang: its request gives up. */
const SLOWEST_PLAUSIBLE_BYTES_PER_SECOND = 10e6

export const TARGET_NAMES = ['raw', 'raw-discard', 'raw-loaded', 'raw-durable', 'node-http', 'tus-server', 'fastify-tus']
export const TUS_TARGETS = ['tus-server', 'fastify-tus']

/** How long a request with a body of `bytes` may take. */
function bodyTimeoutMs (bytes) {
  return 30_000 + Math.ceil(bytes / SLOWEST_PLAUSIBLE_BYTES_PER_SECOND * 1000)
}

/**
 * The targets by name. `dist` is the directory the fastify-tus server loads the
 * plugin from (a snapshot of dist/ taken when the benchmark started).
 */
export function targets ({ dist }) {
  return {
    raw: rawTarget('raw', 'raw.js', ['write'], 'minimal Fastify, the body to a file with fs.writev in ~1 MiB batches: the physical limit for a Fastify app'),
    'raw-discard': { ...rawTarget('raw-discard', 'raw.js', ['discard'], 'the same, reading and dropping the body: the HTTP-parsing limit'), keepsFiles: false },
    'raw-durable': {
      ...rawTarget('raw-durable', 'raw.js', ['durable'], 'raw, creating a record through a temporary file + rename, and checking it on HEAD and PATCH (its stat beside the data file\'s, read again only when its file changed; a PATCH opens the data file at the same time and checks Upload-Offset against its size), answering POST and HEAD through Fastify\'s reply as a plugin must: the least a crash-safe tus plugin can do'),
      creationHeaders: { 'upload-length': '1024' },
      countUploads: async (dir) => (await readdir(dir)).filter((name) => name.endsWith('.json')).length
    },
    'raw-loaded': rawTarget('raw-loaded', 'raw.js', ['write', dist], 'raw, with the plugin registered on a prefix nobody calls: raw with the heap of fastify-tus'),
    'node-http': rawTarget('node-http', 'node-http.js', [], 'for reference: raw on node:http alone, without Fastify'),
    'tus-server': tusTarget('tus-server', 'tus-server.js', [], '/files', '@tus/server + @tus/file-store in Fastify, as its README shows', {
      filePath: (dir, upload) => join(dir, upload.uid),
      countUploads: async (dir) => (await readdir(dir)).filter((name) => name.endsWith('.json')).length
    }),
    'fastify-tus': tusTarget('fastify-tus', 'fastify-tus.js', [dist], '/uploads', 'this plugin from dist/, default options', {
      filePath: (dir, upload) => join(dir, upload.name ?? upload.uid),
      countUploads: async (dir) => (await readdir(join(dir, '.metadata')).catch(() => [])).filter((name) => name.endsWith('.json')).length
    })
  }
}

function rawTarget (name, script, args, description) {
  return {
    name,
    description,
    keepsFiles: true,
    script: join(SERVERS, script),
    args,
    creationPath: '/raw',
    creationHeaders: {},
    headHeaders: {},

    async create (server, { length, agent, patternStart = nextPatternStart() }) {
      const response = await send({ port: server.port, method: 'POST', path: '/raw', headers: { 'upload-length': String(length ?? 0) }, agent, timeoutMs: SMALL_REQUEST_TIMEOUT_MS })
      expectStatus(response, 201, `${name} POST /raw`)
      const path = locationPath(response, server, `${name} POST /raw`)
      const fileName = path.slice(path.lastIndexOf('/') + 1)
      return { path, uid: fileName, length, patternStart, received: 0, filePath: join(server.dir, fileName) }
    },

    async patch (server, upload, { offset, size, chunk, agent, headers = {} }) {
      const response = await send({
        port: server.port,
        method: 'PATCH',
        path: upload.path,
        headers: { ...headers, 'upload-offset': String(offset), 'content-type': OFFSET_OCTET_STREAM },
        size,
        offset: upload.patternStart + offset,
        chunk,
        agent,
        timeoutMs: bodyTimeoutMs(size)
      })
      expectStatus(response, 204, `${name} PATCH ${upload.path}`)
      const received = Number(response.headers['x-received'])
      verifyCount(`${name} PATCH ${upload.path}`, received, size)
      upload.received += received
      return response
    },

    async head (server, upload) {
      const response = await send({ port: server.port, method: 'HEAD', path: upload.path, timeoutMs: SMALL_REQUEST_TIMEOUT_MS })
      expectStatus(response, 200, `${name} HEAD ${upload.path}`)
      return Number(response.headers['upload-offset'])
    },

    async verify (upload, bytes, chunk) {
      if (this.keepsFiles) await verifyFile(upload.filePath, bytes, chunk, upload.patternStart)
      else verifyCount(`${name} ${upload.path}`, upload.received, bytes)
    },

    async countUploads (dir) {
      return (await readdir(dir)).filter((entry) => !entry.startsWith('.')).length
    }
  }
}

function tusTarget (name, script, args, basePath, description, { filePath, countUploads }) {
  return {
    name,
    description,
    keepsFiles: true,
    script: join(SERVERS, script),
    args,
    creationPath: basePath,
    creationHeaders: { ...TUS, 'upload-length': '1024' },
    headHeaders: TUS,
    countUploads,

    /** POST: a new upload of `length` bytes named `name`; `concat` is an Upload-Concat value. */
    async create (server, { length, name: fileName, concat, agent, patternStart = nextPatternStart() }) {
      const headers = { ...TUS }
      if (length !== undefined) headers['upload-length'] = String(length)
      if (fileName !== undefined) headers['upload-metadata'] = `filename ${Buffer.from(fileName).toString('base64')}`
      if (concat !== undefined) headers['upload-concat'] = concat
      const what = `${name} POST ${basePath}`
      const response = await send({ port: server.port, method: 'POST', path: basePath, headers, agent, timeoutMs: SMALL_REQUEST_TIMEOUT_MS })
      expectStatus(response, 201, what)
      const path = locationPath(response, server, what)
      const upload = { path, url: response.headers.location, uid: path.slice(path.lastIndexOf('/') + 1), name: fileName, length, patternStart, createSeconds: response.seconds }
      upload.filePath = filePath(server.dir, upload)
      return upload
    },

    async patch (server, upload, { offset, size, chunk, agent, headers = {} }) {
      const what = `${name} PATCH ${upload.path} at ${offset}`
      const response = await send({
        port: server.port,
        method: 'PATCH',
        path: upload.path,
        headers: { ...headers, ...TUS, 'upload-offset': String(offset), 'content-type': OFFSET_OCTET_STREAM },
        size,
        offset: upload.patternStart + offset,
        chunk,
        agent,
        timeoutMs: bodyTimeoutMs(size)
      })
      expectStatus(response, 204, what)
      const after = response.headers['upload-offset']
      if (after !== String(offset + size)) throw new Error(`${what}: Upload-Offset ${after} after a body of ${size} bytes`)
      return response
    },

    async head (server, upload) {
      const response = await send({ port: server.port, method: 'HEAD', path: upload.path, headers: TUS, timeoutMs: SMALL_REQUEST_TIMEOUT_MS })
      expectStatus(response, 200, `${name} HEAD ${upload.path}`)
      return Number(response.headers['upload-offset'])
    },

    async verify (upload, bytes, chunk) {
      await verifyFile(upload.filePath, bytes, chunk, upload.patternStart)
    }
  }
}

function expectStatus (response, status, what) {
  if (response.status !== status) throw new Error(`${what}: ${response.status} instead of ${status}: ${response.body}`)
}

function locationPath (response, server, what) {
  const location = response.headers.location
  if (typeof location !== 'string') throw new Error(`${what}: ${response.status} without a Location`)
  return new URL(location, `http://127.0.0.1:${server.port}`).pathname
}

/**
 * One whole upload: created, then sent in PATCHes of `patchBytes` (one PATCH
 * when that is the whole size), over one keep-alive connection when `agent`
 * is given; `concat` is its Upload-Concat (tus only), `patternStart` where
 * its bytes start in the pattern, `headersFor(position, size)` adds headers to
 * a PATCH of the pattern's bytes at `position`. Returns the upload and each
 * PATCH's latency in seconds.
 */
export async function uploadInPatches (target, server, { bytes, patchBytes = bytes, name, concat, patternStart, chunk, agent, headersFor }) {
  const upload = await target.create(server, { length: bytes, name, concat, agent, patternStart })
  const latencies = []
  for (let offset = 0; offset < bytes; offset += patchBytes) {
    const size = Math.min(patchBytes, bytes - offset)
    const started = performance.now()
    await target.patch(server, upload, { offset, size, chunk, agent, headers: headersFor?.(upload.patternStart + offset, size) })
    latencies.push((performance.now() - started) / 1000)
  }
  return { upload, latencies }
}
