import { readFile, readdir, readlink, stat } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import tus, { type FastifyTusOptions } from '../lib/index.js'

export const TUS = { 'tus-resumable': '1.0.0' } as const
export const OCTET = 'application/offset+octet-stream'

/** A Fastify app with one tus registration over a fresh directory; closed when the test ends. */
export async function buildApp (
  t: Test, options: Partial<FastifyTusOptions> = {}, server: FastifyServerOptions = {}
): Promise<{ app: FastifyInstance, dir: string }> {
  const dir = t.testdir()
  const app = Fastify(server)
  await app.register(tus, { uploadPath: dir, ...options })
  t.teardown(() => app.close())
  return { app, dir }
}

export function encodeMetadata (metadata: Record<string, string>): string {
  return Object.entries(metadata).map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`).join(',')
}

/** POST a creation request; returns the response and the upload's path. */
export async function createUpload (
  app: FastifyInstance, headers: Record<string, string>, url = '/uploads', payload?: InjectOptions['payload']
): Promise<{ response: LightMyRequestResponse, path: string }> {
  const response = await app.inject({ method: 'POST', url, headers: { ...TUS, ...headers }, ...(payload === undefined ? {} : { payload }) })
  const location = response.headers.location
  return { response, path: typeof location === 'string' ? new URL(location, 'http://x').pathname : '' }
}

export function patchUpload (
  app: FastifyInstance, path: string, offset: number, payload: InjectOptions['payload'], headers: Record<string, string> = {}
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'PATCH',
    url: path,
    headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset), ...headers },
    payload
  })
}

export function headUpload (app: FastifyInstance, path: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'HEAD', url: path, headers: TUS })
}

export async function uploadWhole (app: FastifyInstance, data: Buffer, metadata: Record<string, string> = {}, url = '/uploads'): Promise<string> {
  const headers: Record<string, string> = { 'upload-length': String(data.length) }
  if (Object.keys(metadata).length > 0) headers['upload-metadata'] = encodeMetadata(metadata)
  const { path } = await createUpload(app, headers, url)
  const response = await patchUpload(app, path, 0, data)
  if (response.statusCode !== 204) throw new Error(`PATCH answered ${response.statusCode}: ${response.body}`)
  return path
}

export const uidOf = (path: string): string => path.split('/').pop() as string

export const readText = (path: string): Promise<string> => readFile(path, 'utf8')

/** Deterministic bytes: the same seed and size always give the same data. */
export function seededBytes (size: number, seed = 1): Buffer {
  const data = Buffer.allocUnsafe(size)
  let state = seed >>> 0 || 1
  for (let index = 0; index < size; index++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    data[index] = state & 0xff
  }
  return data
}

/**
 * Every path under `root`, relative and sorted: directories with a trailing
 * slash, files with their size, or with their whole content when asked.
 */
export async function tree (root: string, show: 'size' | 'content' = 'size'): Promise<string[]> {
  const listing: string[] = []
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const relative = prefix + entry.name
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        listing.push(relative + '/')
        await walk(path, relative + '/')
      } else if (show === 'content') {
        listing.push(`${relative} = ${JSON.stringify(await readFile(path, 'utf8'))}`)
      } else {
        listing.push(`${relative} (${(await stat(path)).size})`)
      }
    }
  }
  await walk(root, '')
  return listing.sort()
}

/** Where `actual` first differs from `expected` (the shorter length if one is a prefix of the other); -1 when they are equal. */
export function firstDifference (actual: Buffer, expected: Buffer): number {
  if (actual.equals(expected)) return -1
  const length = Math.min(actual.length, expected.length)
  for (let index = 0; index < length; index++) if (actual[index] !== expected[index]) return index
  return length
}

/** The offset a HEAD gives for the upload at `pathOrUrl`; anything but a 200 throws. */
export async function offsetOf (app: FastifyInstance, pathOrUrl: string): Promise<number> {
  const path = new URL(pathOrUrl, 'http://localhost').pathname
  const head = await headUpload(app, path)
  if (head.statusCode !== 200) throw new Error(`HEAD ${path} answered ${head.statusCode}`)
  return Number(head.headers['upload-offset'])
}

/** The descriptors this process holds open on files under `dir` (Linux: /proc/self/fd). */
export async function descriptorsUnder (dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return targets.filter((target) => target.startsWith(dir))
}
