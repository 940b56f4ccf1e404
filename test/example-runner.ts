import { join } from 'node:path'
import type { Test } from 'tap'
import { spawnNode } from './node-process.js'

const EXAMPLES = new URL('../examples/', import.meta.url).pathname
/** Makes `fastify-tus` resolve to the sources, so that the examples run the code under test. */
const SELF_REFERENCE = new URL('./fixtures/self-reference.mjs', import.meta.url).pathname

/** Starts an example with PORT=0 (and `env`); resolves with the ports of its `listeners` servers, in the order they listen. */
export async function startExample (t: Test, name: string, { env = {}, listeners = 1 }: { env?: Record<string, string>, listeners?: number } = {}): Promise<number[]> {
  const example = spawnNode(t, join(EXAMPLES, name), {
    preArgs: ['--import', SELF_REFERENCE],
    env: { ...process.env, PORT: '0', PAGE_PORT: '0', HOST: '127.0.0.1', ...env }
  })
  const ports = (): number[] => example.lines.flatMap((line) => {
    const port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1]
    return port === undefined ? [] : [Number(port)]
  })
  return example.until(`${name} to listen`, () => ports().length >= listeners ? ports() : undefined)
}
