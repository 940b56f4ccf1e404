// The benchmark's HTTP client: node:http, a fresh connection per request unless
// an agent is given. Request bodies are the benchmark's byte pattern (a chunk of
// random bytes repeated; each upload starts at a point of its own), so that a
// body sent at any offset can be checked on disk later.
import { request as httpRequest } from 'node:http'
import { patternPiece } from './verify.js'

const MAX_RESPONSE_BODY = 64 * 1024

/**
 * Sends a request whose body is `size` bytes: the pattern from `offset` on,
 * written a chunk at a time, each write after the previous one drained.
 * Resolves once the response has ended, with the wall time from the start of
 * the request to then; rejects on a network error, an answer given before the
 * whole body was sent, or `timeoutMs`.
 */
export function send ({ port, method, path, headers = {}, size = 0, offset = 0, chunk, timeoutMs, agent = false }) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    let sent = 0
    let settled = false
    const finish = (error, value) => {
      if (settled) return
      settled = true
      if (error === undefined) resolve(value)
      else {
        request.destroy()
        reject(error)
      }
    }
    const request = httpRequest({
      host: '127.0.0.1',
      port,
      method,
      path,
      agent,
      headers: { ...headers, 'content-length': size },
      signal: AbortSignal.timeout(timeoutMs)
    })
    request.on('error', (error) => {
      finish(error.name === 'AbortError' ? new Error(`${method} ${path}: no answer within ${timeoutMs} ms`) : error)
    })
    request.on('close', () => finish(new Error(`${method} ${path}: the connection closed before the response ended`)))
    request.on('response', (response) => {
      const parts = []
      let kept = 0
      response.on('data', (data) => {
        if (kept < MAX_RESPONSE_BODY) parts.push(data)
        kept += data.length
      })
      response.on('error', (error) => finish(error))
      response.on('end', () => {
        const seconds = (performance.now() - started) / 1000
        const body = Buffer.concat(parts).toString('utf8')
        if (sent < size) {
          finish(new Error(`${method} ${path}: answered ${response.statusCode} after ${sent} of ${size} bytes: ${body}`))
        } else {
          finish(undefined, { status: response.statusCode, headers: response.headers, body, seconds })
        }
      })
    })

    writePattern(request, { chunk, offset, size, stopped: () => settled, onSent: (bytes) => { sent = bytes } }).then(() => request.end())
  })
}

/**
 * Starts a request that announces `contentLength` body bytes, sends the first
 * `size` of them (the pattern from `patternStart`) and then stalls: the socket
 * stays open, nothing more is written. Resolves once those bytes are handed to
 * the kernel, with a promise of what the request eventually got (an answer or
 * an error, never a rejection) and `destroy()`.
 */
export function stall ({ port, method, path, headers = {}, contentLength, size, patternStart, chunk }) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const request = httpRequest({
      host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, 'content-length': contentLength }
    })
    const outcome = new Promise((resolve) => {
      request.on('response', (response) => {
        response.resume()
        const answered = { status: response.statusCode, headers: response.headers, seconds: (performance.now() - started) / 1000 }
        response.on('end', () => resolve(answered))
        response.on('error', () => resolve(answered))
        response.on('close', () => resolve(answered))
      })
      request.on('error', (error) => resolve({ error: error.code ?? error.message, seconds: (performance.now() - started) / 1000 }))
      request.on('close', () => resolve({ error: 'closed', seconds: (performance.now() - started) / 1000 }))
    })
    let handed = false
    request.on('error', (error) => { if (!handed) reject(error) })
    writePattern(request, { chunk, offset: patternStart, size }).then(() => {
      handed = true
      resolve({ outcome, destroy: () => request.destroy() })
    })
  })
}

/**
 * Writes `size` bytes of the pattern from `offset` to `request`, each write
 * after the previous one drained; resolves once all are handed over (never,
 * if `stopped()` turns true on the way). `onSent` hears the running count.
 */
function writePattern (request, { chunk, offset, size, stopped = () => false, onSent = () => {} }) {
  return new Promise((resolve) => {
    let sent = 0
    const pump = () => {
      if (stopped()) return
      while (sent < size) {
        const piece = patternPiece(chunk, offset + sent, size - sent)
        sent += piece.length
        onSent(sent)
        if (!request.write(piece)) {
          request.once('drain', pump)
          return
        }
      }
      resolve()
    }
    pump()
  })
}
