import { spawn } from 'node:child_process'
import type { Test } from 'tap'
import { waitFor, within } from './server.js'

const MAIN = new URL('../lib/cli/main.ts', import.meta.url).pathname

export interface Cli {
  readonly port: number
  /** Its log lines so far, parsed. */
  readonly logs: Array<Record<string, unknown>>
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly stdout: () => string
  readonly stderr: () => string
  kill: (signal: NodeJS.Signals) => void
}

/**
 * `fastify-tus <args>` in a process of its own (through tap's loaders, so that
 * its coverage counts); resolves once it listens, or once it exits when
 * `listens` is false. Killed when the test ends, if still running.
 */
export async function runCli (t: Test, args: string[], { listens = true } = {}): Promise<Cli> {
  const child = spawn(process.execPath, [...process.execArgv, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: withoutSettings(process.env) })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let stdout = ''
  let stderr = ''
  const logs: Array<Record<string, unknown>> = []
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => { stderr += text })
  child.stdout.on('data', (text: string) => {
    stdout += text
    for (const line of text.split('\n')) if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>)
  })
  let port = 0
  if (listens) {
    const ready = await within('the server to listen', waitFor('the listening line', () => logs.find((line) => String(line.msg).startsWith('Server listening at')), 20_000), 21_000)
    port = Number(/:(\d+)$/.exec(String(ready.msg))?.[1])
  } else {
    await within('the command to end', exited, 20_000)
  }
  return { port, logs, exited, stdout: () => stdout, stderr: () => stderr, kill: (signal) => child.kill(signal) }
}

/** The environment without the variables the command reads settings from. */
function withoutSettings (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { PORT, HOST, LOG_LEVEL, ...rest } = env
  return rest
}
