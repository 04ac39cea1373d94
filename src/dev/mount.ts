/**
 * `spawn.executable.mount`: a persistent data directory per key (`true`) or at a sub-path
 * (a string), created under the server's `dataDir` and handed to the backend as
 * `SESSION_BACKEND_DATA_DIR` (Plane mounts the same directory at `/plane-data` in the container).
 */
import { mkdir } from 'node:fs/promises'
import { isAbsolute, join, normalize, resolve, sep } from 'node:path'

/** Validates a `mount` value: `true`/`false` or a relative path without `..`. Throws RangeError. */
export function checkMount(mount: unknown): string | boolean | undefined {
  if (mount === undefined || mount === null || mount === false) return undefined
  if (mount === true) return true
  if (typeof mount !== 'string' || mount === '') throw new RangeError('spawn.executable.mount must be true or a relative path')
  const normal = normalize(mount)
  if (isAbsolute(mount) || normal.split(/[\\/]/).includes('..')) {
    throw new RangeError('spawn.executable.mount must be a relative path without ".."')
  }
  return normal
}

// A key may hold any character: keep [A-Za-z0-9._-] and percent-encode the rest, so that it is one
// safe path segment (`.` and `..` are encoded too).
function keySegment(key: string): string {
  const safe = key.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.codePointAt(0)!.toString(16).padStart(2, '0')}`)
  return safe === '.' || safe === '..' ? safe.replace(/\./g, '%2e') : safe
}

/** Creates (if needed) and returns the absolute data directory for `mount`. */
export async function prepareMount(dataDir: string, cwd: string, key: string, mount: string | true): Promise<string> {
  const base = resolve(cwd, dataDir)
  const dir = mount === true ? join(base, keySegment(key)) : resolve(base, mount)
  if (dir !== base && !dir.startsWith(base + sep)) throw new RangeError('mount escapes the data directory')
  await mkdir(dir, { recursive: true })
  return dir
}
