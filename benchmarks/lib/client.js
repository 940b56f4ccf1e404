// The benchmark's HTTP client: node:http, one fresh connection per request.
import { request as httpRequest } from 'node:http'

const MAX_RESPONSE_BODY = 64 * 1024

/**
 * Sends a request whose body is `size` bytes: `chunk` written again and again
 * (the last write cut to fit), each write after the previous one drained.
 * Resolves once the response has ended, with the wall time from the start of
 * the request to then; rejects on a network error, an answer given before the
 * whole body was sent, or `timeoutMs`.
 */
export function send ({ port, method, path, headers = {}, size = 0, chunk, timeoutMs }) {
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
      agent: false,
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

    const pump = () => {
      if (settled) return
      while (sent < size) {
        const length = Math.min(chunk.length, size - sent)
        sent += length
        if (!request.write(length === chunk.length ? chunk : chunk.subarray(0, length))) {
          request.once('drain', pump)
          return
        }
      }
      request.end()
    }
    pump()
  })
}
