import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import { errors } from './errors.js'
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from './protocol/checksum.js'
import { OPTIONAL_EXTENSIONS, enabledExtensions, type TusExtension } from './protocol/extensions.js'
import type { Locker } from './lock/locker.js'
import type { CompletedResource, Resource } from './resource.js'
import type { UploadMetadata } from './protocol/metadata.js'
import { parseUploadPath, type UploadPathTemplate } from './store/paths.js'
import { parseRoutePattern, type RoutePattern } from './route-pattern.js'

export interface FastifyTusOptions {
  /** Where uploads are stored; `{param}` placeholders are filled from the route's params. */
  uploadPath: string
  /** The creation URL, Fastify route syntax. Default `/uploads`. */
  uploadUrl?: string
  /** Names the creation route; the upload route is `${name}_resource`. Default `tus:<uploadUrl>`. */
  uploadResourceName?: string
  /** Let a new upload replace a completed file of the same name. Default `false`. */
  allowOverwriteFiles?: boolean
  /**
   * Largest upload accepted, in bytes, or a function of the request giving it
   * (per-user quotas; it runs after the guards); advertised as `Tus-Max-Size`.
   * Default: no limit.
   */
  maxSize?: number | ((request: FastifyRequest) => number | Promise<number>)
  /** Answer creation with a `Location` path instead of an absolute URL. Default `false`. */
  relativeLocation?: boolean
  /** Guards: Fastify `onRequest` hooks run on every tus route but OPTIONS. */
  onRequest?: onRequestHookHandler | onRequestHookHandler[]
  /** Called once the completed file is in its final place. */
  onUploadDone?: (request: FastifyRequest, resource: CompletedResource, filePath: string) => void | Promise<void>
  /**
   * Called before an upload is created, before anything is written: throw (an
   * error with a `statusCode`) to refuse it, or return new metadata for it.
   */
  onUploadCreate?: (request: FastifyRequest, resource: Resource) => UploadCreateResult | Promise<UploadCreateResult>
  /** Called after an upload was terminated (DELETE). */
  onUploadTerminate?: (request: FastifyRequest, resource: Resource) => void | Promise<void>
  /** Called while a body streams to an upload: at most once per `progressInterval`, and once when it stops. */
  onUploadProgress?: (request: FastifyRequest, resource: Resource) => void
  /** Milliseconds between two `onUploadProgress` calls for one request. Default 1000. */
  progressInterval?: number
  /** Milliseconds a body may send nothing before the request is ended (408), its bytes kept. Default 60000. */
  idleTimeout?: number
  /** Request bodies this registration writes at once; more get a 503 with `Retry-After`. Default 1000. */
  maxConcurrentUploads?: number
  /** The largest `Upload-Metadata` header, in bytes (400 above). Default 8192. */
  maxMetadataSize?: number
  /**
   * One writer per upload: `'memory'` within this process (the default, the
   * fastest), `'file'` across processes and hosts that share `uploadPath`, or a
   * Locker of your own (for example a FileLocker with other timings).
   */
  locker?: 'memory' | 'file' | Locker
  /** Serializes upload records to the metadata files. Default `JSON.stringify`. */
  jsonDumps?: (value: unknown) => string
  /** Parses the metadata files. Default `JSON.parse`. */
  jsonLoads?: (text: string) => unknown
  /** tus extensions to turn off; `Tus-Extension` lists the others. Default: none. */
  disabledExtensions?: TusExtension[]
  /** Checksum algorithms offered for `Upload-Checksum`. Default `['sha1', 'md5', 'sha256', 'sha512']`. */
  checksumAlgorithms?: ChecksumAlgorithm[]
  /** Milliseconds after its last write that an unfinished upload expires. Default: never. */
  expiration?: number
  /** Milliseconds between automatic runs of `app.tusCleanup()`. Default: none (run it yourself). */
  cleanupInterval?: number
  /** Serve requests that carry `Upload-Draft-Interop-Version` (5, 6, 8) by the IETF resumable-upload draft. Default `true`. */
  ietfDraft?: boolean
}

/** What `onUploadCreate` may return: new metadata for the upload (its `filename` names the file). */
export type UploadCreateResult = void | { metadata?: UploadMetadata }

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  readonly uploadPath: UploadPathTemplate
  /** `uploadUrl` without a trailing slash (`''` for `/`), as routes are registered. */
  readonly uploadUrl: string
  /** The creation URL with the registration's prefix, for reverse routing. */
  readonly creationRoute: RoutePattern
  readonly uploadResourceName: string | undefined
  readonly allowOverwriteFiles: boolean
  readonly maxSize: FastifyTusOptions['maxSize']
  readonly relativeLocation: boolean
  readonly onRequest: onRequestHookHandler[]
  readonly onUploadDone: FastifyTusOptions['onUploadDone']
  readonly onUploadCreate: FastifyTusOptions['onUploadCreate']
  readonly onUploadTerminate: FastifyTusOptions['onUploadTerminate']
  readonly onUploadProgress: FastifyTusOptions['onUploadProgress']
  readonly progressInterval: number
  readonly idleTimeout: number
  readonly maxConcurrentUploads: number
  readonly maxMetadataSize: number
  readonly locker: 'memory' | 'file' | Locker
  readonly jsonDumps: (value: unknown) => string
  readonly jsonLoads: (text: string) => unknown
  readonly extensions: ReadonlySet<TusExtension>
  readonly checksumAlgorithms: readonly ChecksumAlgorithm[]
  readonly expiration: number | undefined
  readonly cleanupInterval: number | undefined
  readonly ietfDraft: boolean
}

const invalid = (name: string, problem: string): Error => new errors.FST_TUS_INVALID_OPTION(name, problem)

/**
 * Checks the options at registration, in a context whose routes get `prefix`;
 * a bad option throws an error that names it.
 */
export function resolveOptions (options: FastifyTusOptions, prefix: string): ResolvedOptions {
  const {
    uploadPath, uploadUrl = '/uploads', uploadResourceName, allowOverwriteFiles = false, maxSize,
    relativeLocation = false, onRequest = [], onUploadDone, onUploadCreate, onUploadTerminate, onUploadProgress, progressInterval = 1000, idleTimeout = 60_000,
    maxConcurrentUploads = 1000, maxMetadataSize = 8192, locker = 'memory',
    jsonDumps = JSON.stringify, jsonLoads = JSON.parse,
    disabledExtensions = [], checksumAlgorithms = [...CHECKSUM_ALGORITHMS], expiration, cleanupInterval, ietfDraft = true
  } = options

  if (typeof uploadPath !== 'string' || uploadPath === '') throw invalid('uploadPath', 'must be a non-empty string')
  if (typeof uploadUrl !== 'string' || !uploadUrl.startsWith('/') || /[*?#]/.test(uploadUrl)) {
    throw invalid('uploadUrl', 'must be a path starting with "/", without wildcards, query or fragment')
  }
  const base = uploadUrl.replace(/\/+$/, '')
  const route = parseRoutePattern(prefix + base || '/')
  if (route.params.includes('uid')) throw invalid('uploadUrl', 'cannot use the parameter name "uid", which names uploads')
  const template = parseUploadPath(uploadPath)
  const unknown = template.params.filter((param) => !route.params.includes(param))
  if (unknown.length > 0) throw invalid('uploadPath', `has placeholders that are not route params: {${unknown.join('}, {')}}`)
  if (uploadResourceName !== undefined && (typeof uploadResourceName !== 'string' || uploadResourceName === '')) {
    throw invalid('uploadResourceName', 'must be a non-empty string')
  }
  checkBoolean('allowOverwriteFiles', allowOverwriteFiles)
  checkBoolean('relativeLocation', relativeLocation)
  checkBoolean('ietfDraft', ietfDraft)
  if (typeof maxSize !== 'function') checkPositive('maxSize', maxSize, 'bytes')
  checkPositive('progressInterval', progressInterval, 'milliseconds')
  checkPositive('idleTimeout', idleTimeout, 'milliseconds', MAX_TIMER)
  checkPositive('maxConcurrentUploads', maxConcurrentUploads, 'requests')
  checkPositive('maxMetadataSize', maxMetadataSize, 'bytes')
  if (locker !== 'memory' && locker !== 'file' && !isLocker(locker)) throw invalid('locker', 'must be "memory", "file" or an object with acquire() and tryAcquire()')
  checkPositive('expiration', expiration, 'milliseconds')
  checkPositive('cleanupInterval', cleanupInterval, 'milliseconds', MAX_TIMER)
  const guards = Array.isArray(onRequest) ? onRequest : [onRequest]
  if (!guards.every((guard) => typeof guard === 'function')) throw invalid('onRequest', 'must be a function or an array of functions')
  checkFunction('onUploadDone', onUploadDone, true)
  checkFunction('onUploadCreate', onUploadCreate, true)
  checkFunction('onUploadTerminate', onUploadTerminate, true)
  checkFunction('onUploadProgress', onUploadProgress, true)
  checkFunction('jsonDumps', jsonDumps, false)
  checkFunction('jsonLoads', jsonLoads, false)
  checkList('disabledExtensions', disabledExtensions, OPTIONAL_EXTENSIONS, true)
  checkList('checksumAlgorithms', checksumAlgorithms, CHECKSUM_ALGORITHMS, false)

  return {
    uploadPath: template,
    uploadUrl: base,
    creationRoute: route,
    uploadResourceName,
    allowOverwriteFiles,
    maxSize,
    relativeLocation,
    onRequest: guards,
    onUploadDone,
    onUploadCreate,
    onUploadTerminate,
    onUploadProgress,
    progressInterval,
    idleTimeout,
    maxConcurrentUploads,
    maxMetadataSize,
    locker,
    jsonDumps,
    jsonLoads,
    extensions: enabledExtensions(expiration === undefined ? [...disabledExtensions, 'expiration'] : disabledExtensions),
    checksumAlgorithms,
    expiration,
    cleanupInterval,
    ietfDraft
  }
}

function isLocker (value: unknown): value is Locker {
  const candidate = value as Partial<Locker> | null
  return typeof candidate?.acquire === 'function' && typeof candidate.tryAcquire === 'function'
}

function checkBoolean (name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw invalid(name, 'must be a boolean')
}

/** The longest delay a Node timer takes. */
const MAX_TIMER = 2 ** 31 - 1

function checkPositive (name: string, value: unknown, unit: string, maximum = Number.MAX_SAFE_INTEGER): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= maximum)) {
    throw invalid(name, `must be a positive integer number of ${unit}${maximum < Number.MAX_SAFE_INTEGER ? ` (at most ${maximum})` : ''}`)
  }
}

function checkList (name: string, value: unknown, allowed: readonly string[], mayBeEmpty: boolean): void {
  if (!Array.isArray(value) || (!mayBeEmpty && value.length === 0) || !value.every((item) => allowed.includes(item))) {
    throw invalid(name, `must be ${mayBeEmpty ? 'an' : 'a non-empty'} array of: ${allowed.join(', ')}`)
  }
}

function checkFunction (name: string, value: unknown, optional: boolean): void {
  if (optional && value === undefined) return
  if (typeof value !== 'function') throw invalid(name, 'must be a function')
}
