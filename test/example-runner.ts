import { spawn } from 'node:child_process'
import { join } from 'node:path'
import type { Test } from 'tap'
import { waitFor, within } from './server.js'

const EXAMPLES = new URL('../examples/', import.meta.url).pathname
const SELF_REFERENCE = new URL('./fixtures/self-reference.mjs', import.meta.url).pathname

export /** Starts an example with PORT=0 (and `env`); resolves with the ports it listens on, in the order it says so. */
async function startExample (t: Test, name: string, env: Record<string, string> = {}): Promise<number[]> {
  const child = spawn(process.execPath, [...process.execArgv, '--import', SELF_REFERENCE, join(EXAMPLES, name)], {
    env: { ...process.env, PORT: '0', PAGE_PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    child.kill('SIGKILL')
    await exited
  })
  let output = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => { output += text })
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const ports = (): number[] => [...output.matchAll(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]))
  const expected = name === 'uppy-with-cors.js' ? 2 : 1
  await within(`${name} to listen (stderr: ${stderr})`, waitFor(`${name} to listen`, () => ports().length >= expected ? true : undefined, 20_000), 21_000)
  return ports()
}
