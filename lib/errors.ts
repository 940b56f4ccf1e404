import createError from '@fastify/error'

/**
 * Every error fastify-tus raises, by code. Request errors carry the status code
 * that PROTOCOL.md decides; registration and reverse-routing errors carry none.
 */
export const errors = {
  // registration and reverse routing
  FST_TUS_INVALID_OPTION: createError<[string, string]>(
    'FST_TUS_INVALID_OPTION', 'fastify-tus: option "%s" %s'),
  FST_TUS_ROUTE_NAME_TAKEN: createError<[string]>(
    'FST_TUS_ROUTE_NAME_TAKEN', 'fastify-tus: the route name "%s" is already registered'),
  FST_TUS_UNKNOWN_ROUTE: createError<[string]>(
    'FST_TUS_UNKNOWN_ROUTE', 'fastify-tus: no tus route is named "%s"'),
  FST_TUS_MISSING_ROUTE_PARAM: createError<[string, string]>(
    'FST_TUS_MISSING_ROUTE_PARAM', 'fastify-tus: the route "%s" needs the parameter "%s"'),

  // requests
  FST_TUS_UNSUPPORTED_VERSION: createError<[string]>(
    'FST_TUS_UNSUPPORTED_VERSION', 'Tus-Resumable must be 1.0.0, got %s', 412),
  FST_TUS_INVALID_HEADER: createError<[string, string]>(
    'FST_TUS_INVALID_HEADER', 'Invalid %s header: %s', 400),
  FST_TUS_UNSUPPORTED_MEDIA_TYPE: createError<[string]>(
    'FST_TUS_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/offset+octet-stream, got %s', 415),
  FST_TUS_LENGTH_REQUIRED: createError(
    'FST_TUS_LENGTH_REQUIRED', 'Upload-Length or Upload-Defer-Length: 1 is required', 400),
  FST_TUS_LENGTH_CONFLICT: createError(
    'FST_TUS_LENGTH_CONFLICT', 'Upload-Length and Upload-Defer-Length cannot be sent together', 400),
  FST_TUS_LENGTH_ALREADY_SET: createError<[number]>(
    'FST_TUS_LENGTH_ALREADY_SET', 'Upload-Length is already set to %d and cannot change', 400),
  FST_TUS_LENGTH_BELOW_OFFSET: createError<[number, number]>(
    'FST_TUS_LENGTH_BELOW_OFFSET', 'Upload-Length %d is smaller than the current offset %d', 400),
  FST_TUS_INVALID_METADATA: createError<[string]>(
    'FST_TUS_INVALID_METADATA', 'Invalid Upload-Metadata header: %s', 400),
  FST_TUS_TOO_LARGE: createError<[string]>(
    'FST_TUS_TOO_LARGE', '%s', 413),
  FST_TUS_OFFSET_MISMATCH: createError<[number, number]>(
    'FST_TUS_OFFSET_MISMATCH', 'Upload-Offset %d does not match the current offset %d', 409),
  FST_TUS_UPLOAD_NOT_FOUND: createError(
    'FST_TUS_UPLOAD_NOT_FOUND', 'Upload not found', 404),
  FST_TUS_UPLOAD_EXPIRED: createError(
    'FST_TUS_UPLOAD_EXPIRED', 'The upload expired; start a new one', 410),
  FST_TUS_INVALID_ROUTE_PARAM: createError<[string]>(
    'FST_TUS_INVALID_ROUTE_PARAM', 'Route parameter "%s" cannot name an upload directory', 404),
  FST_TUS_FILE_EXISTS: createError<[string]>(
    'FST_TUS_FILE_EXISTS', 'A file named "%s" already exists or is being uploaded', 409),
  FST_TUS_INTERRUPTED: createError(
    'FST_TUS_INTERRUPTED', 'The upload was taken over by a newer request for it; ask where it stands and go on', 409),
  FST_TUS_EXTENSION_DISABLED: createError<[string]>(
    'FST_TUS_EXTENSION_DISABLED', 'The tus extension "%s" is turned off on this server', 400),
  FST_TUS_CHECKSUM_ALGORITHM: createError<[string, string]>(
    'FST_TUS_CHECKSUM_ALGORITHM', 'Checksum algorithm "%s" is not offered; use one of: %s', 400),
  FST_TUS_CHECKSUM_MISMATCH: createError<[string]>(
    'FST_TUS_CHECKSUM_MISMATCH', 'The body does not match its %s checksum; it was discarded', 460),
  FST_TUS_CHECKSUM_TRAILER: createError<[string]>(
    'FST_TUS_CHECKSUM_TRAILER', 'Checksum trailer: %s; the body was discarded', 400),
  FST_TUS_INVALID_CONCAT: createError<[string]>(
    'FST_TUS_INVALID_CONCAT', 'Invalid concatenation: %s', 400),
  FST_TUS_FINAL_UPLOAD: createError(
    'FST_TUS_FINAL_UPLOAD', 'A final upload cannot be patched: it is made of its partial uploads', 403),
  FST_TUS_CONCAT_BROKEN: createError(
    'FST_TUS_CONCAT_BROKEN', 'A partial upload of this final upload is gone; it can never complete', 410),
  FST_TUS_DRAFT_VERSION: createError<[string]>(
    'FST_TUS_DRAFT_VERSION', 'Upload-Draft-Interop-Version %s is not spoken here: use 5, 6 or 8', 400),
  FST_TUS_MAX_SIZE_FUNCTION: createError<[string]>(
    'FST_TUS_MAX_SIZE_FUNCTION', 'The maxSize function returned %s, not a positive integer number of bytes', 500),
  FST_TUS_IDLE_TIMEOUT: createError<[number]>(
    'FST_TUS_IDLE_TIMEOUT', 'No byte of the body came for %d ms; the bytes received so far are kept', 408),
  FST_TUS_SHUTTING_DOWN: createError(
    'FST_TUS_SHUTTING_DOWN', 'The server is shutting down; the bytes received so far are kept, resume the upload', 503),
  FST_TUS_BUSY: createError<[number]>(
    'FST_TUS_BUSY', 'The server is writing %d uploads already; try again in a moment', 503),
  FST_TUS_METADATA_TOO_LARGE: createError<[number]>(
    'FST_TUS_METADATA_TOO_LARGE', 'Upload-Metadata is larger than %d bytes', 400),
  FST_TUS_IO_ERROR: createError(
    'FST_TUS_IO_ERROR', 'The upload\'s storage failed to read or write (EIO); the bytes that reached it are kept', 500),
  FST_TUS_INSUFFICIENT_STORAGE: createError(
    'FST_TUS_INSUFFICIENT_STORAGE', 'The server has no room left for this upload; the bytes received so far are kept', 507),
  FST_TUS_CORRUPT_METADATA: createError<[string, string]>(
    'FST_TUS_CORRUPT_METADATA', 'The metadata of upload %s cannot be read: %s', 500)
} as const

export type TusErrorCode = keyof typeof errors
