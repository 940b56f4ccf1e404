import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildApp, createUpload, encodeMetadata, headUpload, patchUpload, seededBytes, uidOf } from './helpers.js'

/** Mounts a small tmpfs where the platform lets this process (root on Linux); undefined elsewhere. */
async function mountSmallDisk (t: Test, bytes: number): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-tus-disk-'))
  t.teardown(() => rm(dir, { recursive: true }))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' })
  } catch {
    return undefined
  }
  t.teardown(() => { execFileSync('umount', [dir]) })
  return dir
}

t.test('a full disk answers 507, keeps the bytes that reached it, and the upload resumes once there is room', async (t) => {
  const disk = await mountSmallDisk(t, 256 * 1024)
  if (disk === undefined) {
    t.comment('NOTE: mounting a tmpfs is not permitted here; the /dev/full test below still covers ENOSPC')
    t.pass('no mount')
    return
  }
  const { app } = await buildApp(t, { uploadPath: disk })
  const data = seededBytes(1024 * 1024)
  const { path } = await createUpload(app, { 'upload-length': String(data.length), 'upload-metadata': encodeMetadata({ filename: 'big.bin' }) })
  const full = await patchUpload(app, path, 0, data)
  t.equal(full.statusCode, 507)
  t.equal(full.json().code, 'FST_TUS_INSUFFICIENT_STORAGE')
  const part = join(disk, '.metadata', `${uidOf(path)}.part`)
  const kept = (await stat(part)).size
  t.ok(kept > 0 && kept < data.length, `some bytes reached the disk (${kept})`)
  t.equal((await headUpload(app, path)).headers['upload-offset'], String(kept), 'and they are counted')
  t.same(await readFile(part), data.subarray(0, kept), 'byte-exact')

  const other = await createUpload(app, { 'upload-length': '1' })
  t.equal(other.response.statusCode, 507, 'a creation on the full disk is a 507 too')
  const elsewhere = await buildApp(t)
  t.equal((await createUpload(elsewhere.app, { 'upload-length': '1' })).response.statusCode, 201, 'uploads elsewhere go on')

  execFileSync('mount', ['-o', 'remount,size=4m', disk])
  t.equal((await patchUpload(app, path, kept, data.subarray(kept))).statusCode, 204)
  t.same(await readFile(join(disk, 'big.bin')), data)
})

t.test('ENOSPC from the device itself (/dev/full) is a 507 too', async (t) => {
  const { app, dir } = await buildApp(t)
  const { path } = await createUpload(app, { 'upload-length': '10' })
  await mkdir(join(dir, '.metadata'), { recursive: true })
  await symlink('/dev/full', join(dir, '.metadata', `${uidOf(path)}.part`))
  const response = await patchUpload(app, path, 0, 'abc')
  t.equal(response.statusCode, 507)
  t.match(response.json().message, /no room left/)
})
