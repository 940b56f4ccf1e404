// Shared by the benchmark's server processes: listen on a free port of
// 127.0.0.1 and tell the parent which one, over the IPC channel of fork().
export async function serve (app) {
  // The benchmark process is gone (finished, crashed or killed): so is the server.
  process.once('disconnect', () => process.exit(0))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address()
  if (process.send === undefined) console.log(`listening on http://127.0.0.1:${port}`)
  else process.send({ ready: true, port })
}

/** The upload directory, the first argument. */
export function uploadDirectory () {
  const dir = process.argv[2]
  if (dir === undefined) throw new Error('usage: node <server>.js <upload directory>')
  return dir
}
