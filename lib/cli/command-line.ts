import { createRequire } from 'node:module'
import { Command, InvalidArgumentError, Option } from 'commander'
import { parseDuration, parseSize } from './units.js'

/** What the standalone server is told on its command line. */
export interface ServerSettings {
  readonly dir: string
  readonly port: number
  readonly host: string
  readonly basePath: string
  readonly maxSize: number | undefined
  readonly expiration: number | undefined
  readonly cleanupInterval: number
  readonly corsOrigins: readonly string[]
  readonly trustProxy: boolean
  readonly locker: 'memory' | 'file'
  readonly logLevel: string
  readonly page: boolean
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string }

/** The `fastify-tus` command: its options, defaults and help. */
export function command (): Command {
  return new Command('fastify-tus')
    .description('A tus resumable-upload server: uploads go to --dir, the tus endpoint is --base-path, an upload page is at /.')
    .version(version)
    .addOption(new Option('-d, --dir <path>', 'where uploads are stored (created if missing)').default('./uploads'))
    .addOption(new Option('-p, --port <number>', 'port to listen on').default(1080).env('PORT').argParser(port))
    .addOption(new Option('--host <address>', 'address to listen on').default('0.0.0.0').env('HOST'))
    .addOption(new Option('-b, --base-path <path>', 'the tus endpoint (creation URL)').default('/files').argParser(basePath))
    .addOption(new Option('--max-size <size>', 'largest upload accepted, e.g. 10GiB (default: no limit)').argParser(wrap(parseSize)))
    .addOption(new Option('--expiration <duration>', 'unfinished uploads expire after this long without a write, e.g. 24h (default: never)').argParser(wrap(parseDuration)))
    .addOption(new Option('--cleanup-interval <duration>', 'time between removals of expired uploads and crash leftovers').default(3_600_000, '1h').argParser(wrap(parseDuration)))
    .addOption(new Option('--cors-origin <origin...>', 'allow browsers on these origins (or *) to upload: CORS with the tus headers (default: same origin only)').default([]))
    .addOption(new Option('--trust-proxy', 'trust X-Forwarded-* headers (behind a reverse proxy): Locations use the client-facing protocol and host').default(false))
    .addOption(new Option('--locker <kind>', 'one writer per upload: within this process, or across processes sharing --dir').choices(['memory', 'file']).default('memory'))
    .addOption(new Option('--log-level <level>', 'pino log level').choices(LOG_LEVELS).default('info').env('LOG_LEVEL'))
    .addOption(new Option('--no-page', 'do not serve the upload page at /'))
    .showHelpAfterError()
}

/** The settings of a command line (without the node and script arguments); throws a CommanderError for a bad one, or for --help and --version. */
export function parseCommandLine (argv: readonly string[], output?: { writeOut: (text: string) => void, writeErr: (text: string) => void }): ServerSettings {
  const program = command().exitOverride()
  if (output !== undefined) program.configureOutput(output)
  return settingsOf(program.parse(argv, { from: 'user' }))
}

/** The settings of a parsed command. */
export function settingsOf (program: Command): ServerSettings {
  const options = program.opts()
  return {
    dir: options.dir,
    port: options.port,
    host: options.host,
    basePath: options.basePath,
    maxSize: options.maxSize,
    expiration: options.expiration,
    cleanupInterval: options.cleanupInterval,
    corsOrigins: options.corsOrigin,
    trustProxy: options.trustProxy,
    locker: options.locker,
    logLevel: options.logLevel,
    page: options.page
  }
}

function port (text: string): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535')
  return value
}

function basePath (text: string): string {
  if (!text.startsWith('/') || text === '/' || /[?#\s]/.test(text)) throw new InvalidArgumentError('a base path is an absolute URL path other than /, such as /files')
  return text.replace(/\/+$/, '')
}

/** Turns a parser's RangeError into commander's error for a bad option value. */
function wrap (parse: (text: string) => number): (text: string) => number {
  return (text) => {
    try {
      return parse(text)
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message)
    }
  }
}
