/**
 * What a NetworkError carries as its `cause`, for the client and the status follower alike: the
 * error with the system code. Runtimes wrap it (undici: TypeError "fetch failed" → cause with
 * `code: 'ECONNREFUSED'`), so a caller would have to dig for it. No `node:*` imports.
 */

/** The first error along `error`'s `cause` chain that has a string `code`, else `error` itself. */
export function codedError(error: unknown): unknown {
  let e = error
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    if (typeof (e as { code?: unknown }).code === 'string') return e
    e = (e as { cause?: unknown }).cause
  }
  return error
}
