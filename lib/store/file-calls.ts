import { close, mkdir as mkdirCallback, open, rename as renameCallback, rmdir as rmdirCallback, stat as statCallback, unlink as unlinkCallback, writeFile } from 'node:fs'
import { promisify } from 'node:util'

/*
 * File calls through callbacks, for the store and the file locker: a FileHandle
 * (fs/promises) costs half again as much CPU to open, and POST, PATCH and
 * completion each open files; fs/promises' stat took a fifth to a half more CPU
 * than this one in a loop here (HEAD and PATCH stat twice), and its rename goes
 * the same way (POST renames, and a file lock renames twice per PATCH).
 */
export const openFile = promisify(open)
export const closeFile = promisify(close)
export const writeText = promisify(writeFile)
export const stat = promisify(statCallback)
export const rename = promisify(renameCallback)
export const mkdir = promisify(mkdirCallback)
export const rmdir = promisify(rmdirCallback)
export const unlink = promisify(unlinkCallback)
