/**
 * `spawn.executable.mount`: a persistent data directory per key (`true`) or at a sub-path
 * (a string), created under the server's `dataDir` and handed to the backend as
 * `SESSION_BACKEND_DATA_DIR` (Plane mounts the same directory at `/plane-data` in the container).
 * One key's directory is never another's, and no directory leaves the data directory, through
 * `..` or through a symlink a backend left behind.
 */
import { createHash } from 'node:crypto'
import { mkdir, realpath } from 'node:fs/promises'
import { isAbsolute, join, normalize, resolve, sep } from 'node:path'

/** Validates a `mount` value: `true`/`false` or a relative path inside the data directory. Throws RangeError. */
export function checkMount(mount: unknown): string | boolean | undefined {
  if (mount === undefined || mount === null || mount === false) return undefined
  if (mount === true) return true
  if (typeof mount !== 'string' || mount === '') throw new RangeError('spawn.executable.mount must be true or a relative path')
  const normal = normalize(mount).replace(/[\\/]+$/, '')
  if (isAbsolute(mount) || normal.split(/[\\/]/).includes('..')) {
    throw new RangeError('spawn.executable.mount must be a relative path without ".."')
  }
  // '.' (or 'a/..') would hand the backend the whole data directory: every other key's data.
  if (normal === '.' || normal === '') throw new RangeError('spawn.executable.mount must name a directory inside the data directory, not "."')
  if (mount.includes('\0')) throw new RangeError('spawn.executable.mount must not contain NUL')
  return normal
}

// Longest directory name made from a key before it is shortened with a hash (NAME_MAX is 255 bytes).
const MAX_SEGMENT = 200

/**
 * The directory name of a key: its UTF-8 bytes, each of `[a-z0-9_-]` (and `.` but first) kept,
 * every other byte as `%XX` (upper-case hex). Every byte maps to a fixed form that starts with
 * itself or with `%`, so two keys never share a name, also on case-insensitive file systems
 * (upper-case letters are escaped). A name longer than 200 characters is cut and ends with `~` and
 * the key's SHA-256, a character the plain form never holds.
 * @internal
 */
export function keySegment(key: string): string {
  let out = ''
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte)
    const plain = /[a-z0-9_-]/.test(c) || (c === '.' && out !== '')
    out += plain ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  if (out.length <= MAX_SEGMENT) return out
  const hash = createHash('sha256').update(key, 'utf8').digest('hex')
  return `${out.slice(0, 128).replace(/%[0-9A-F]?$/, '')}~${hash}`
}

/**
 * Creates (if needed) and returns the absolute data directory for `mount`, one component at a time,
 * each resolved (symlinks followed) and checked to be inside the real data directory.
 */
export async function prepareMount(dataDir: string, cwd: string, key: string, mount: string | true): Promise<string> {
  const base = resolve(cwd, dataDir)
  await mkdir(base, { recursive: true })
  const realBase = await realpath(base)
  let dir = realBase
  for (const part of (mount === true ? keySegment(key) : mount).split(/[\\/]/)) {
    if (part === '' || part === '.') continue
    try {
      await mkdir(join(dir, part))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const real = await realpath(join(dir, part))
    if (!real.startsWith(realBase + sep)) throw new RangeError(`mount ${JSON.stringify(mount)} leaves the data directory (through a symlink)`)
    dir = real
  }
  return dir
}
