// Page-cache priming before a measured upload. On this kind of machine (a
// virtual machine whose kernel reports free memory back to the host), a page
// that has been free for about a second costs several times more to touch
// again than one freed just now: writing 512 MiB with dd costs 0.17 s of system
// time right after the same amount was freed, 0.88 s a second later. Without
// priming, a target's system time depended on how long before its run the
// previous target's files were removed, that is on its place in the round.
// Writing and removing as many bytes as the upload will need, right before it,
// gives every target the same start: freshly freed pages, in the client's time.
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'

const BLOCK = Buffer.alloc(8 * 1024 * 1024, 0x5a)

/** Writes `bytes` to a scratch file in `dir` (the upload's file system) and removes it. */
export function primePageCache (dir, bytes) {
  const path = join(dir, `prime-${process.pid}.tmp`)
  const fd = openSync(path, 'w')
  try {
    for (let written = 0; written < bytes; written += BLOCK.length) writeSync(fd, BLOCK, 0, Math.min(BLOCK.length, bytes - written))
  } finally {
    closeSync(fd)
    unlinkSync(path)
  }
}
