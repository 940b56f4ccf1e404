import { spawn } from 'node:child_process'
import type { Test } from 'tap'
import { waitFor, within } from './server.js'

export interface NodeProcess {
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** The complete lines of its standard output so far. */
  readonly lines: readonly string[]
  readonly stdout: () => string
  readonly stderr: () => string
  /** Polls `check` until it gives something; rejects, with the process's stderr, if it exits first or after `timeout` ms. */
  until: <T>(what: string, check: () => T | undefined, timeout?: number) => Promise<T>
  kill: (signal: NodeJS.Signals) => void
}

/**
 * `node <preArgs> <script> <args>` through tap's loaders (so that its coverage
 * counts) with `env`; killed when the test ends, if still running.
 */
export function spawnNode (t: Test, script: string, { preArgs = [], args = [], env = process.env }: { preArgs?: string[], args?: string[], env?: NodeJS.ProcessEnv } = {}): NodeProcess {
  const child = spawn(process.execPath, [...process.execArgv, ...preArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  let stdout = ''
  let stderr = ''
  const lines: string[] = []
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const partial = stdout.slice(stdout.lastIndexOf('\n') + 1)
    stdout += text
    lines.push(...(partial + text).split('\n').slice(0, -1))
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const until = async <T>(what: string, check: () => T | undefined, timeout = 20_000): Promise<T> => {
    const gone = exited.then(({ code, signal }) => { throw new Error(`the process exited (code ${code}, signal ${signal}) before ${what}`) })
    try {
      return await Promise.race([within(what, waitFor(what, check, timeout), timeout + 1000), gone])
    } catch (error) {
      throw new Error(`${(error as Error).message}\nstderr of ${script}:\n${stderr}`)
    } finally {
      gone.catch(() => {})
    }
  }
  return { exited, lines, stdout: () => stdout, stderr: () => stderr, until, kill: (signal) => child.kill(signal) }
}
