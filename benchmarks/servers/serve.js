// Shared by the benchmark's server processes: listen on a free port of
// 127.0.0.1 and tell the parent which one, over the IPC channel of fork().
import { once } from 'node:events'

/** Listens with a Fastify app or a node:http server, then reports the port. */
export async function serve (server) {
  // The benchmark process is gone (finished, crashed or killed): so is the server.
  process.once('disconnect', () => process.exit(0))
  let address
  if (typeof server.inject === 'function') {
    await server.listen({ host: '127.0.0.1', port: 0 })
    address = server.server.address()
  } else {
    server.listen({ host: '127.0.0.1', port: 0 })
    await once(server, 'listening')
    address = server.address()
  }
  if (process.send === undefined) console.log(`listening on http://127.0.0.1:${address.port}`)
  else process.send({ ready: true, port: address.port })
}

/** The upload directory, the first argument. */
export function uploadDirectory () {
  const dir = process.argv[2]
  if (dir === undefined) throw new Error('usage: node <server>.js <upload directory> [options]')
  return dir
}
