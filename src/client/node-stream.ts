/**
 * A lean transport for status streams on Node. An open `fetch` (undici) stream holds about 25 KB of
 * heap; the same stream over `node:http` about 6 KB (measured here, 1,000 streams). A server that
 * follows many backends holds one stream each, so the client hands its handles this transport.
 *
 * Only `GET` requests that accept `text/event-stream` take this path; everything else goes to the
 * global fetch. It returns the part of a `Response` the status follower reads: `status`, `ok`,
 * `headers.get()` and a `body` with `getReader()`/`cancel()`.
 *
 * The modules are found through `process.getBuiltinModule` (Node ≥ 20.16), not imported, so that no
 * bundler sees a `node:` import: where it is missing (browsers, edge runtimes, older Node) the
 * handles use fetch as before.
 */
import type * as Http from 'node:http'
import type { FetchLike } from '../abort.js'

type HttpModule = typeof Http
type ReadResult = { done: false; value: Uint8Array } | { done: true; value: undefined }

interface Modules {
  http: HttpModule
  https: HttpModule
  agents: { http: Http.Agent; https: Http.Agent }
}

let modules: Modules | null | undefined

function load(): Modules | null {
  if (modules !== undefined) return modules
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule
  if (typeof get !== 'function') return (modules = null)
  const http = get('node:http') as HttpModule
  const https = get('node:https') as HttpModule
  // No keep-alive: a stream's socket ends with the stream, and no idle socket holds the process open.
  modules = { http, https, agents: { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) } }
  return modules
}

/** True for the status follower's stream request (a GET that accepts an event stream). */
function isEventStream(init: RequestInit | undefined): boolean {
  if (init?.method !== undefined && init.method.toUpperCase() !== 'GET') return false
  const headers = init?.headers
  if (!headers || headers instanceof Headers || Array.isArray(headers)) return false
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'accept' && String(value).includes('text/event-stream')) return true
  }
  return false
}

/**
 * The fetch the client gives its handles on Node: event streams over `node:http(s)`, all else
 * through the global fetch (looked up per call, so that test interceptors still apply).
 * Undefined where the Node modules cannot be had.
 */
export function statusFetch(): FetchLike | undefined {
  if (dispatch !== undefined) return dispatch ?? undefined
  if (load() === null) return (dispatch = null) ?? undefined
  dispatch = (input, init) => {
    const url = new URL(String(input))
    if ((url.protocol === 'http:' || url.protocol === 'https:') && isEventStream(init)) return openStream(url, init!)
    return globalThis.fetch(input, init)
  }
  return dispatch
}

let dispatch: FetchLike | null | undefined

/** As fetch: redirects are followed, at most this many times. */
const MAX_REDIRECTS = 20

/**
 * Opens the stream, following redirects as fetch does (the request carries no credential: the
 * status URL is public), so that both transports reach the same stream.
 */
async function openStream(url: URL, init: RequestInit): Promise<Response> {
  for (let redirects = 0; ; redirects++) {
    const { req, res } = await request(url, init)
    const location = res.headers.location
    if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || location === undefined) return asResponse(req, res, init.signal ?? undefined)
    res.resume() // the redirect's body is not wanted; the agent does not keep sockets alive
    req.destroy()
    const next = new URL(location, url)
    if (redirects >= MAX_REDIRECTS || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
      throw new TypeError('fetch failed', { cause: new Error(redirects >= MAX_REDIRECTS ? 'redirect count exceeded' : `cannot follow a redirect to ${next.protocol}`) })
    }
    url = next
  }
}

function request(url: URL, init: RequestInit): Promise<{ req: Http.ClientRequest; res: Http.IncomingMessage }> {
  const { http, https, agents } = load()!
  const secure = url.protocol === 'https:'
  const signal = init.signal ?? undefined
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const req = (secure ? https : http).request(url, {
      method: 'GET',
      headers: init.headers as Record<string, string>,
      agent: secure ? agents.https : agents.http,
    })
    const onAbort = () => {
      req.destroy()
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    // Like undici: a request that gets no answer rejects with a TypeError whose cause says why.
    req.on('error', (error) => reject(new TypeError('fetch failed', { cause: error })))
    req.once('response', (res) => {
      signal?.removeEventListener('abort', onAbort)
      resolve({ req, res })
    })
    req.end()
  })
}

/** The part of a Response the status follower reads, over an IncomingMessage. */
function asResponse(req: Http.ClientRequest, res: Http.IncomingMessage, signal: AbortSignal | undefined): Response {
  let waiting: { resolve: (r: ReadResult) => void; reject: (e: unknown) => void } | undefined
  let failure: unknown
  let ended = false
  const destroy = () => {
    req.destroy()
    res.destroy()
  }
  const settle = () => {
    if (!waiting) return
    const w = waiting
    const chunk = res.read() as Uint8Array | null
    if (chunk !== null) {
      waiting = undefined
      w.resolve({ done: false, value: chunk })
    } else if (failure !== undefined) {
      waiting = undefined
      w.reject(failure)
    } else if (ended) {
      waiting = undefined
      w.resolve({ done: true, value: undefined })
    }
  }
  const fail = (error: unknown) => {
    if (ended) return
    failure ??= error
    settle()
  }
  res.on('readable', settle)
  res.once('end', () => {
    ended = true
    settle()
  })
  res.on('error', fail)
  // A socket that closes before the end of the body is a broken connection, not an end.
  res.once('close', () => fail(new TypeError('terminated', { cause: new Error('the connection closed before the end of the body') })))
  const onAbort = () => {
    fail(signal!.reason)
    destroy()
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  res.once('close', () => signal?.removeEventListener('abort', onAbort))

  const cancel = (): Promise<void> => {
    ended = true
    settle()
    destroy()
    return Promise.resolve()
  }
  const reader = {
    read: (): Promise<ReadResult> =>
      new Promise((resolve, reject) => {
        if (waiting) return reject(new TypeError('a read is already pending'))
        waiting = { resolve, reject }
        settle()
      }),
    cancel,
    releaseLock: () => {},
  }
  const status = res.statusCode ?? 0
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: {
      get(name: string): string | null {
        const value = res.headers[name.toLowerCase()]
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
      },
    },
    body: { getReader: () => reader, cancel },
  } as unknown as Response
}
