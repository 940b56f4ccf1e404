// What `npm pack` ships and how it resolves: dist/ only, with declarations and
// source maps; ESM import and require both work; @arethetypeswrong/cli agrees.
// Runs against dist/ as `npm test` builds it.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const ROOT = new URL('..', import.meta.url).pathname

t.setTimeout(120_000)

t.test('npm pack: dist/ with a declaration and a source map for every module, and nothing else', async (t) => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT })
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((file) => file.path) ?? []
  t.same(files.filter((path) => !path.startsWith('dist/')).sort(), ['README.md', 'package.json'], 'beside dist/: what npm always ships')
  const modules = files.filter((path) => path.endsWith('.js'))
  t.ok(modules.includes('dist/index.js') && modules.includes('dist/page/index.js') && modules.includes('dist/cli/main.js'), 'the entry points and the bin')
  const lacking = modules.filter((module) => {
    const stem = module.slice(0, -'.js'.length)
    return ![`${stem}.d.ts`, `${module}.map`, `${stem}.d.ts.map`].every((path) => files.includes(path))
  })
  t.same(lacking, [], `each of the ${modules.length} modules has its declaration and maps`)
})

t.test('import and require both load the entry points (require of ESM: Node 20.19 and later)', async (t) => {
  const script = `
    const tus = require('fastify-tus'); const page = require('fastify-tus/page')
    import('fastify-tus').then((esm) => {
      console.log([typeof tus.default, typeof tus.corsAllowedHeaders, typeof page.fastifyTusPage, esm.default === tus.default].join(' '))
    })`
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: ROOT })
  t.equal(stdout.trim(), 'function object function true')
})

t.test('@arethetypeswrong/cli finds no problem with the packed types (node16 resolution, ESM-only by design)', async (t) => {
  const args = ['attw', '--pack', '.', '--profile', 'node16', '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'ascii']
  const { code, output } = await run('npx', args, { cwd: ROOT }).then(
    ({ stdout }) => ({ code: 0, output: stdout }),
    (error: { code?: number, stdout?: string }) => ({ code: error.code, output: error.stdout })
  )
  t.equal(code, 0, `attw exits 0 when every resolution is sound:\n${output}`)
})
