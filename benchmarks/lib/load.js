// Small requests at full speed: autocannon, in this process.
import { createRequire } from 'node:module'
import autocannon from 'autocannon'

const require = createRequire(import.meta.url)
// autocannon parses responses with http-parser-js, which does not know a HEAD
// response has no body (RFC 9110 9.3.2): one that announces no Content-Length
// (the tus servers' do not) is read as a body that lasts until the connection
// closes, so each connection hangs after its first HEAD. The parser skips the
// body when its headers-complete callback returns 1, which is set below for
// HEAD runs through autocannon's `setupClient` hook.
const { HTTPParser } = createRequire(require.resolve('autocannon'))('http-parser-js')

/**
 * `connections` keep-alive connections sending `method` requests for `seconds`,
 * connection i to `paths[i % paths.length]`. With `check(status, headers)`,
 * every response is checked (a client cost: for unmeasured runs only).
 * Resolves with the count of 2xx answers, the duration, and every kind of
 * failure autocannon counts.
 */
export async function load ({ port, method, paths, headers, connections, seconds, check }) {
  let next = 0
  const problems = []
  const request = (path) => ({
    method,
    path,
    headers,
    onResponse: check === undefined
      ? undefined
      : (status, body, context, responseHeaders) => {
          const problem = check(status, lowerCaseKeys(responseHeaders))
          if (problem !== undefined && problems.length < 5) problems.push(problem)
        }
  })
  const setupClient = (client) => {
    client.setRequests([request(paths[next++ % paths.length])])
    if (method !== 'HEAD') return
    // the client's parser callbacks are set right after this hook returns
    queueMicrotask(() => {
      const headersComplete = client.parser[HTTPParser.kOnHeadersComplete]
      client.parser[HTTPParser.kOnHeadersComplete] = (info) => {
        headersComplete(info)
        return 1
      }
    })
  }
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    timeout: 10,
    setupClient,
    requests: [request(paths[0])]
  })
  return {
    ok: result['2xx'],
    seconds: result.duration,
    requestsPerSecond: result['2xx'] / result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyP99Ms: result.latency.p99,
    problems
  }
}

/** A load run with failed requests, or answers that `check` refused, is an error. */
export function expectClean (what, result) {
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0 || result.problems.length > 0 || result.ok === 0) {
    throw new Error(`${what}: ${result.ok} good answers, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts` +
      (result.problems.length > 0 ? `; ${result.problems.join('; ')}` : ''))
  }
}

function lowerCaseKeys (headers) {
  return Object.fromEntries(Object.entries(headers).map(([key, value]) => [key.toLowerCase(), value]))
}
