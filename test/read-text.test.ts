import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { readText } from '../lib/store/read-text.js'

t.test('reads a whole file as UTF-8, however long, characters split across reads included', async (t) => {
  const dir = t.testdir()
  const text = 'é'.repeat(40_000) + 'end' // 80,003 bytes: several reads, each boundary inside a character
  await writeFile(join(dir, 'long'), text)
  t.equal(await readText(join(dir, 'long')), text)
  await writeFile(join(dir, 'exact'), 'x'.repeat(16 * 1024))
  t.equal((await readText(join(dir, 'exact'))).length, 16 * 1024, 'a file of exactly one read')
  await writeFile(join(dir, 'empty'), '')
  t.equal(await readText(join(dir, 'empty')), '')
})

t.test('a missing file or a directory rejects with the error of the call that failed', async (t) => {
  const dir = t.testdir()
  await t.rejects(readText(join(dir, 'missing')), { code: 'ENOENT' })
  await mkdir(join(dir, 'folder'))
  await t.rejects(readText(join(dir, 'folder')), { code: 'EISDIR' })
})
