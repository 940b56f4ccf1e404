// A benchmark target: a server in a child process of its own.
import { fork } from 'node:child_process'
import { once } from 'node:events'

const START_TIMEOUT_MS = 15_000
const STOP_TIMEOUT_MS = 5_000

/** Every server started and not yet stopped, for the cleanup of an interrupted run. */
const running = new Set()

/**
 * Starts `script` with `args` (the upload directory first), under node with
 * `nodeFlags` and this process's environment plus `environment`, and waits for
 * the port it listens on. The child exits by itself when this process goes away.
 */
export function startServer (script, args, { nodeFlags, environment }) {
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeFlags, env: { ...process.env, ...environment } })
  running.add(child)
  child.once('exit', () => running.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${script} did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
    const onMessage = (message) => {
      if (message?.ready !== true) return
      done()
      resolve({ pid: child.pid, port: message.port, child })
    }
    const onExit = (code, signal) => fail(new Error(`${script} exited before listening (code ${code}, signal ${signal})`))
    const onError = (error) => fail(error)
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.once('error', onError)
    function done () {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      child.off('error', onError)
    }
    function fail (error) {
      done()
      stopServer(child).finally(() => reject(error))
    }
  })
}

/** Ends a server: SIGTERM, then SIGKILL if it is still there after a while. */
export async function stopServer (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  let timer
  const late = new Promise((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS, 'late') })
  if (await Promise.race([exited, late]) === 'late') {
    child.kill('SIGKILL')
    await exited
  }
  clearTimeout(timer)
}

/** The last resort of a signal handler: no waiting, no stray process. */
export function killAllNow () {
  for (const child of running) child.kill('SIGKILL')
}
