// Real-browser tests: Chromium (Debian's, /usr/bin/chromium) driven by
// playwright-core, uploading through the upload page. Screenshots go to
// artifacts/browser/ (not committed). Without a browser the tests are skipped
// with a loud message: .ci/run installs one.
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import cors from '@fastify/cors'
import Fastify from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { parseCommandLine } from '../lib/cli/command-line.js'
import { buildServer } from '../lib/cli/server.js'
import tus, { corsAllowedHeaders, corsExposedHeaders, corsMethods } from '../lib/index.js'
import { fastifyTusPage } from '../lib/page/index.js'
import { runCli } from './cli-runner.js'
import { startExample } from './example-runner.js'
import { seededBytes } from './helpers.js'
import { slowProxy, waitFor } from './server.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = new URL('../artifacts/browser/', import.meta.url).pathname
const MiB = 1024 * 1024
/** Flags for a headless Chromium on a machine without a network outside. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

t.setTimeout(240_000)

const missing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}`
if (missing !== undefined) {
  const line = '!'.repeat(100)
  console.error(`\n${line}\n!! NO BROWSER at ${CHROMIUM}: the real-browser tests are SKIPPED.\n!! Install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH.\n${line}\n`)
}
const browser = missing === undefined ? await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }) : undefined
if (browser !== undefined) {
  t.teardown(() => browser.close())
  await mkdir(ARTIFACTS, { recursive: true })
}
/** A test that needs the browser: skipped, saying why, without one. */
const browserTest = (name: string, run: (t: Test, browser: Browser) => Promise<void>): void => {
  t.test(name, { skip: missing }, (t) => run(t, browser as Browser))
}

async function newPage (t: Test, browser: Browser): Promise<Page> {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  // what went wrong in the page, if anything: said with the test's output
  page.on('pageerror', (error) => t.comment(`error in the page: ${error.message}`))
  page.on('requestfailed', (request) => t.comment(`request failed in the page: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`))
  return page
}

/** A file of `size` seeded bytes to pick in the page. */
async function fileToPick (t: Test, name: string, size: number, seed: number): Promise<{ path: string, data: Buffer }> {
  const data = seededBytes(size, seed)
  const folder = join(t.testdir(), 'picked')
  await mkdir(folder, { recursive: true })
  const path = join(folder, name)
  await writeFile(path, data)
  return { path, data }
}

const row = (page: Page, name: string) => page.locator(`[data-testid=upload][data-name="${name}"]`)

async function percentOf (page: Page, name: string): Promise<number> {
  return Number(await row(page, name).getAttribute('data-percent') ?? 0)
}

async function waitForState (page: Page, name: string, state: string, timeout = 60_000): Promise<void> {
  await row(page, name).and(page.locator(`[data-state=${state}]`)).waitFor({ timeout })
}

/**
 * The standalone server behind a slow link (so that there is time to pause),
 * its page open, and a 32 MiB file picked; resolves once the page says
 * `percent`% of it went out.
 */
async function uploadThroughSlowLink (t: Test, browser: Browser, name: string, seed: number, percent: number): Promise<{ dir: string, page: Page, path: string, data: Buffer }> {
  const dir = t.testdir()
  const app = await buildServer(parseCommandLine(['--dir', dir, '--log-level', 'silent']))
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = await slowProxy(t, (app.server.address() as { port: number }).port, 8 * MiB)
  const page = await newPage(t, browser)
  await page.goto(`http://127.0.0.1:${port}/`)
  const { path, data } = await fileToPick(t, name, 32 * MiB, seed)
  await page.setInputFiles('[data-testid=file-input]', path)
  await waitFor(`${percent}% of the upload`, async () => await percentOf(page, name) >= percent ? true : undefined, 30_000, 20)
  return { dir, page, path, data }
}

browserTest('32 MiB through the page: paused at about half, resumed, stored byte-exact, listed as completed', async (t, browser) => {
  const { dir, page, data } = await uploadThroughSlowLink(t, browser, 'big.bin', 11, 45)
  await page.screenshot({ path: join(ARTIFACTS, 'upload-in-progress.png'), fullPage: true })
  await row(page, 'big.bin').getByTestId('toggle').click()
  await waitForState(page, 'big.bin', 'paused')
  const pausedAt = await percentOf(page, 'big.bin')
  t.ok(pausedAt >= 45 && pausedAt < 100, `paused at ${pausedAt}%`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(await percentOf(page, 'big.bin'), pausedAt, 'nothing moves while paused')
  t.match(await row(page, 'big.bin').getByTestId('status').textContent(), `Paused at ${pausedAt}%`)

  await row(page, 'big.bin').getByTestId('toggle').click()
  await waitForState(page, 'big.bin', 'done')
  await page.screenshot({ path: join(ARTIFACTS, 'upload-done.png'), fullPage: true })
  t.ok((await readFile(join(dir, 'big.bin'))).equals(data), 'the stored file is byte-exact')
  t.equal(await page.locator('[data-testid=completed-upload][data-name="big.bin"]').count(), 1, 'listed as completed')
})

browserTest('cross-origin: the page on one port, the tus server on another through @fastify/cors with the exported header lists', async (t, browser) => {
  const dir = t.testdir()
  const tusApp = Fastify()
  t.teardown(() => tusApp.close())
  let pageOrigin = '' // known once the page's app listens
  await tusApp.register(cors, {
    origin: (origin, callback) => callback(null, origin === pageOrigin),
    methods: [...corsMethods],
    allowedHeaders: [...corsAllowedHeaders],
    exposedHeaders: [...corsExposedHeaders]
  })
  await tusApp.register(tus, { uploadPath: dir, uploadUrl: '/files' })
  await tusApp.listen({ port: 0, host: '127.0.0.1' })
  const endpoint = `http://127.0.0.1:${(tusApp.server.address() as { port: number }).port}/files`
  const pages = Fastify()
  t.teardown(() => pages.close())
  await pages.register(fastifyTusPage, { endpoint, title: 'Cross-origin upload' })
  await pages.listen({ port: 0, host: '127.0.0.1' })
  pageOrigin = `http://127.0.0.1:${(pages.server.address() as { port: number }).port}`

  const page = await newPage(t, browser)
  await page.goto(`${pageOrigin}/`)
  const { path, data } = await fileToPick(t, 'cross.bin', 4 * MiB, 12)
  await page.setInputFiles('[data-testid=file-input]', path)
  await waitForState(page, 'cross.bin', 'done', 30_000)
  t.ok((await readFile(join(dir, 'cross.bin'))).equals(data), 'byte-exact')
  t.match(await page.locator('[data-testid=completed-upload] a').getAttribute('href'), new RegExp(`^${endpoint}/`), 'the Location header was readable cross-origin')
})

browserTest('the server stopped mid-upload: the page retries, and after a restart the upload ends byte-exact', async (t, browser) => {
  const dir = t.testdir()
  const first = await runCli(t, ['--dir', dir, '--port', '0', '--host', '127.0.0.1'])
  const args = ['--dir', dir, '--port', String(first.port), '--host', '127.0.0.1']
  const port = await slowProxy(t, first.port, 8 * MiB)
  const page = await newPage(t, browser)
  await page.goto(`http://127.0.0.1:${port}/`)
  const { path, data } = await fileToPick(t, 'restart.bin', 32 * MiB, 13)
  await page.setInputFiles('[data-testid=file-input]', path)
  await waitFor('a third of the upload', async () => await percentOf(page, 'restart.bin') >= 30 ? true : undefined, 30_000, 20)
  first.kill('SIGTERM')
  t.same(await first.exited, { code: 0, signal: null })
  await waitForState(page, 'restart.bin', 'retrying', 30_000)
  await page.screenshot({ path: join(ARTIFACTS, 'upload-retrying.png'), fullPage: true })
  await runCli(t, args)
  await waitForState(page, 'restart.bin', 'done', 60_000)
  t.ok((await readFile(join(dir, 'restart.bin'))).equals(data), 'byte-exact')
})

browserTest('Uppy (Dashboard + @uppy/tus) on one origin uploads to the tus server on another: examples/uppy-with-cors.js', async (t, browser) => {
  const dir = t.testdir()
  const [, pagePort] = await startExample(t, 'uppy-with-cors.js', { env: { UPLOAD_DIR: dir }, listeners: 2 })
  const page = await newPage(t, browser)
  await page.goto(`http://localhost:${pagePort}/`)
  const { path, data } = await fileToPick(t, 'uppy.bin', 8 * MiB, 14)
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles(path)
  await page.locator('#uploaded li[data-name="uppy.bin"]').waitFor({ timeout: 30_000 })
  await page.screenshot({ path: join(ARTIFACTS, 'uppy-done.png'), fullPage: true })
  t.ok((await readFile(join(dir, 'uppy.bin'))).equals(data), 'byte-exact')
})

browserTest('an upload paused, the page reloaded, the same file picked again: it resumes from what the server kept', async (t, browser) => {
  const { dir, page, path, data } = await uploadThroughSlowLink(t, browser, 'again.bin', 15, 30)
  await row(page, 'again.bin').getByTestId('toggle').click()
  await waitForState(page, 'again.bin', 'paused')
  const pausedAt = await percentOf(page, 'again.bin')

  await page.reload()
  await page.setInputFiles('[data-testid=file-input]', path)
  // the first progress it reports is where the server's HEAD said it stood: what had
  // reached the server (the browser counts what it sent, some of it still in the slow link)
  const resumedAt = await waitFor('the first progress after the reload', async () => {
    const percent = await row(page, 'again.bin').getAttribute('data-percent')
    return percent === null ? undefined : Number(percent)
  }, 30_000, 5)
  t.ok(resumedAt > 0 && resumedAt <= pausedAt, `resumed at ${resumedAt}% (paused at ${pausedAt}%), not from the start`)
  await waitForState(page, 'again.bin', 'done')
  t.ok((await readFile(join(dir, 'again.bin'))).equals(data), 'byte-exact')
})
