/**
 * The transport status streams use when no `fetch` is given. The status layer imports nothing from
 * `node:*` and runs anywhere on `fetch`; a runtime's own entry may put a leaner transport for event
 * streams in its place (the Node client does: `node:http`, a quarter of fetch's heap per open
 * stream), so that every handle follows with it, `new BackendHandle()` included.
 */
import type { FetchLike } from '../abort.js'

let registered: FetchLike | undefined

/**
 * Sets the fetch used by status streams that were given none (`undefined`: `globalThis.fetch`
 * again). Read at each request, so handles made before the call use it too. @internal
 */
export function setDefaultStreamFetch(fetch: FetchLike | undefined): void {
  registered = fetch
}

/** The registered transport, else the global fetch looked up at call time (a polyfill or mock installed later is honoured). */
export const defaultStreamFetch: FetchLike = (input, init) => (registered ?? globalThis.fetch)(input, init)
