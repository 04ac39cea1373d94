/**
 * A lean transport for status streams on Node. An open `fetch` (undici) stream holds about 25 KB of
 * heap; the same stream over `node:http` about 6 KB (measured here, 1,000 streams). A server that
 * follows many backends holds one stream each, so on Node every handle follows with this transport
 * (registered as the status layer's default when the client module, src/client/jamsocket.ts, loads,
 * so `new BackendHandle()` too).
 *
 * Only `GET` requests that accept `text/event-stream` take this path, and only while
 * `globalThis.fetch` is Node's own: a fetch installed in its place (a polyfill, a test's mock,
 * msw, an APM wrapper) is used as it is. Everything else goes to the global fetch. It returns the
 * part of a `Response` the status follower reads: `status`, `ok`, `headers.get()` and a `body` with
 * `getReader()`/`cancel()`.
 *
 * The modules are found through `process.getBuiltinModule` (Node ≥ 20.16), not imported, so that no
 * bundler sees a `node:` import: where it is missing (browsers, edge runtimes, older Node) the
 * handles use fetch as before.
 */
import type * as Http from 'node:http'
import type { FetchLike } from '../abort.js'

type HttpModule = typeof Http
type ReadResult = { done: false; value: Uint8Array } | { done: true; value: undefined }

interface Transport {
  module: HttpModule
  /** No keep-alive: a stream's socket ends with the stream, and no idle socket holds the process open. */
  agent: Http.Agent
}

type GetBuiltinModule = (id: string) => unknown

function getBuiltinModule(): GetBuiltinModule | undefined {
  const get = (globalThis as { process?: { getBuiltinModule?: GetBuiltinModule } }).process?.getBuiltinModule
  return typeof get === 'function' ? get : undefined
}

const transports: { 'http:'?: Transport; 'https:'?: Transport } = {}

/** `node:http` or `node:https` with its agent, loaded on first use (https only when a stream needs it). */
function transportFor(protocol: 'http:' | 'https:'): Transport {
  let transport = transports[protocol]
  if (transport === undefined) {
    const module = getBuiltinModule()!(protocol === 'https:' ? 'node:https' : 'node:http') as HttpModule
    transport = transports[protocol] = { module, agent: new module.Agent({ keepAlive: false }) }
  }
  return transport
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

// The runtime's own fetch, as found when this module loaded.
const builtinFetch: unknown = globalThis.fetch

let dispatch: FetchLike | undefined

/**
 * The fetch the client gives its handles on Node: event streams over `node:http(s)` while the
 * global fetch is Node's own, all else through the global fetch (looked up per call, so that test
 * interceptors still apply). Undefined where the Node modules cannot be had.
 */
export function statusFetch(): FetchLike | undefined {
  if (getBuiltinModule() === undefined) return undefined
  return (dispatch ??= (input, init) => {
    if (globalThis.fetch === builtinFetch && isEventStream(init)) {
      const url = new URL(String(input))
      if (url.protocol === 'http:' || url.protocol === 'https:') return openStream(url, init!)
    }
    return globalThis.fetch(input, init)
  })
}

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
  const { module, agent } = transportFor(url.protocol as 'http:' | 'https:')
  const signal = init.signal ?? undefined
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const req = module.request(url, { method: 'GET', headers: init.headers as Record<string, string>, agent })
    const onAbort = () => {
      req.destroy()
      reject(signal!.reason)
    }
    // Like undici: a request that gets no answer rejects with a TypeError whose cause says why.
    const onError = (error: Error) => reject(new TypeError('fetch failed', { cause: error }))
    signal?.addEventListener('abort', onAbort, { once: true })
    req.on('error', onError)
    req.once('response', (res) => {
      signal?.removeEventListener('abort', onAbort)
      // From here on the response reports failures; these closures are not kept for the stream's life.
      req.off('error', onError)
      req.on('error', ignore)
      resolve({ req, res })
    })
    req.end()
  })
}

function ignore(): void {}

/** Where an IncomingMessage's listeners find their {@link NodeStream}. */
const STREAM = Symbol('session-backends.stream')
type Tagged = Http.IncomingMessage & { [STREAM]: NodeStream }

// Shared listeners (`this` is the IncomingMessage): no closures per stream, as thousands may be open.
function onReadable(this: Tagged): void {
  this[STREAM].settle()
}
function onEnd(this: Tagged): void {
  this[STREAM].end()
}
function onError(this: Tagged, error: unknown): void {
  this[STREAM].fail(error)
}
function onClose(this: Tagged): void {
  const stream = this[STREAM]
  // A socket that closes before the end of the body is a broken connection, not an end.
  stream.fail(new TypeError('terminated', { cause: new Error('the connection closed before the end of the body') }))
  stream.detach()
}

/**
 * The part of a Response the status follower reads, over an IncomingMessage: `status`, `ok`,
 * `headers.get()`, `body.getReader()`, `body.cancel()`, and the reader's `read()`/`cancel()`. One
 * object plays all these parts (its methods are on the prototype): what each open stream costs.
 */
class NodeStream {
  readonly status: number
  readonly ok: boolean
  readonly #req: Http.ClientRequest
  readonly #res: Http.IncomingMessage
  readonly #signal: AbortSignal | undefined
  #resolve: ((result: ReadResult) => void) | undefined
  #reject: ((error: unknown) => void) | undefined
  #failure: unknown
  #ended = false

  constructor(req: Http.ClientRequest, res: Http.IncomingMessage, signal: AbortSignal | undefined) {
    this.#req = req
    this.#res = res
    this.#signal = signal
    this.status = res.statusCode ?? 0
    this.ok = this.status >= 200 && this.status < 300
    ;(res as Tagged)[STREAM] = this
    res.on('readable', onReadable)
    res.once('end', onEnd)
    res.on('error', onError)
    res.once('close', onClose)
    // An EventListener object (handleEvent) rather than a closure.
    signal?.addEventListener('abort', this, { once: true })
  }

  get headers(): this {
    return this
  }

  get body(): this {
    return this
  }

  /** `headers.get()` */
  get(name: string): string | null {
    const value = this.#res.headers[name.toLowerCase()]
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
  }

  /** `body.getReader()` */
  getReader(): this {
    return this
  }

  read(): Promise<ReadResult> {
    return new Promise((resolve, reject) => {
      if (this.#resolve) return reject(new TypeError('a read is already pending'))
      this.#resolve = resolve
      this.#reject = reject
      this.settle()
    })
  }

  /** `body.cancel()` and `reader.cancel()`: ends the pending read and closes the connection. */
  cancel(): Promise<void> {
    this.#ended = true
    this.settle()
    this.#destroy()
    return Promise.resolve()
  }

  releaseLock(): void {}

  /** The caller's signal aborted: the pending read rejects with its reason. */
  handleEvent(): void {
    this.fail(this.#signal!.reason)
    this.#destroy()
  }

  /** @internal Answers a pending read if there is something to answer with. */
  settle(): void {
    const resolve = this.#resolve
    if (!resolve) return
    const chunk = this.#res.read() as Uint8Array | null
    if (chunk !== null) {
      this.#take()
      resolve({ done: false, value: chunk })
    } else if (this.#failure !== undefined) {
      const reject = this.#reject!
      this.#take()
      reject(this.#failure)
    } else if (this.#ended) {
      this.#take()
      resolve({ done: true, value: undefined })
    }
  }

  /** @internal */
  end(): void {
    this.#ended = true
    this.settle()
  }

  /** @internal */
  fail(error: unknown): void {
    if (this.#ended) return
    this.#failure ??= error
    this.settle()
  }

  /** @internal The connection closed: nothing more will come, the signal is not needed any more. */
  detach(): void {
    this.#signal?.removeEventListener('abort', this)
  }

  #take(): void {
    this.#resolve = undefined
    this.#reject = undefined
  }

  #destroy(): void {
    this.#req.destroy()
    this.#res.destroy()
  }
}

function asResponse(req: Http.ClientRequest, res: Http.IncomingMessage, signal: AbortSignal | undefined): Response {
  return new NodeStream(req, res, signal) as unknown as Response
}
