import type { Test } from 'tap'
import { spawnNode, type NodeProcess } from './node-process.js'
import { within } from './server.js'

const MAIN = new URL('../lib/cli/main.ts', import.meta.url).pathname

export interface Cli extends NodeProcess {
  readonly port: number
  /** Its log lines so far, parsed. */
  readonly logs: Array<Record<string, unknown>>
}

/**
 * `fastify-tus <args>` in a process of its own; resolves once it listens, or
 * once it exits when `listens` is false.
 */
export async function runCli (t: Test, args: string[], { listens = true } = {}): Promise<Cli> {
  const cli = spawnNode(t, MAIN, { args, env: withoutSettings(process.env) })
  const logs = (): Array<Record<string, unknown>> => cli.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
  let port = 0
  if (listens) {
    const ready = await cli.until('the server to listen', () => logs().find((line) => String(line.msg).startsWith('Server listening at')))
    port = Number(/:(\d+)$/.exec(String(ready.msg))?.[1])
  } else {
    await within('the command to end', cli.exited, 20_000)
  }
  return { ...cli, port, get logs () { return logs() } }
}

/** The environment without the variables the command reads settings from. */
function withoutSettings (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { PORT, HOST, LOG_LEVEL, ...rest } = env
  return rest
}
