#!/usr/bin/env node
// The fastify-tus command: a standalone tus server. `fastify-tus --help` tells its options.
import { command, settingsOf } from './command-line.js'
import { buildServer } from './server.js'

// a bad command line, --help and --version end here: commander says why (or prints them) and exits
const settings = settingsOf(command().parse(process.argv))
const app = await buildServer(settings)
await app.listen({ port: settings.port, host: settings.host })
app.log.info({ dir: settings.dir, endpoint: settings.basePath, page: settings.page, cors: settings.corsOrigins, locker: settings.locker }, 'tus server ready')

// the first SIGINT or SIGTERM closes; a second of the same kind gets its default action: the process ends at once
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    app.log.info({ signal }, 'shutting down: bodies in flight are ended with their bytes kept, answered, and resumable')
    await app.close()
    process.exit(0)
  })
}
