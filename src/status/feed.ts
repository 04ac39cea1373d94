/**
 * StatusFeed: ONE status stream (`{status_url}/stream`) for one backend, shared by any number of
 * subscribers (handles). It follows while someone subscribes, reconnects when the stream drops,
 * and delivers every status at most once, in order, never backwards (DESIGN §3).
 *
 * Imports nothing from `node:*`: it runs in browsers and edge runtimes.
 */
import { checkMs, discard, type FetchLike } from '../abort.js'
import { codedError } from '../cause.js'
import {
  BackendNotFoundError,
  AuthenticationError,
  HTTPError,
  JamsocketError,
  NetworkError,
  ProtocolError,
  RateLimitError,
  TimeoutError,
} from '../errors.js'
import { parseBackendState, statusRank, type BackendState, type ConnectResponse } from '../wire.js'
import { backoffDelay, MAX_RETRY_AFTER_MS, parseRetryAfter, reconnectBase } from './backoff.js'
import { DEFAULT_MAX_EVENT_BYTES, readEventStream, type SseHandlers, type SseMessage } from './sse.js'
import { defaultStreamFetch } from './transport.js'

/** How the feed reconnects after the stream drops or fails. */
export interface ReconnectOptions {
  /** The first delay before reconnecting, in milliseconds (a server's `retry:` replaces it). @default 500 */
  minDelayMs?: number
  /** The longest delay between attempts, in milliseconds. @default 30_000 */
  maxDelayMs?: number
  /**
   * Consecutive failed attempts (no new status from them) after which following stops with a
   * final error. A connection that delivers a new status resets the count.
   * @default Infinity
   */
  maxAttempts?: number
}

/** Options of a {@link StatusFeed}. */
export interface StatusFeedOptions {
  /**
   * The fetch used for the status stream. @default globalThis.fetch; on Node, once the client
   * (`session-backends`) is loaded, event streams go over `node:http` while `globalThis.fetch` is
   * Node's own
   */
  fetch?: FetchLike
  /** Reconnect timing. @default { minDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Infinity } */
  reconnect?: ReconnectOptions
  /**
   * A stream that sends no byte at all (not even a `:` keep-alive comment) for this long is treated
   * as dead and reconnected. Plane sends a comment every 15 s. @default 45_000
   */
  stallTimeoutMs?: number
  /**
   * The largest event (or run of lines without a blank line) accepted, in UTF-8 bytes; past it the
   * stream is treated as broken (ProtocolError) and following stops. @default 65_536
   */
  maxEventBytes?: number
}

/** What a {@link StatusFeed} tells its subscribers. */
export type FeedEvent =
  | { type: 'status'; state: BackendState }
  | {
      type: 'error'
      error: JamsocketError
      /** True when following stopped because of this error; false when a reconnect follows. */
      final: boolean
    }
  /** Its owner closed the feed ({@link StatusFeed.close}) before it ended: nothing more follows. */
  | { type: 'closed' }

/** A subscriber of a {@link StatusFeed}. */
export type FeedListener = (event: FeedEvent) => void

interface Settings {
  fetch: FetchLike
  minDelayMs: number
  maxDelayMs: number
  maxAttempts: number
  stallTimeoutMs: number
  maxEventBytes: number
}

/** The outcome of one connection. */
interface Attempt {
  /** It delivered a new status (the reconnect backoff starts over). */
  healthy: boolean
  error?: JamsocketError
  /** Following must stop (the error says why). */
  final?: boolean
  retryAfterMs?: number | undefined
}

const ABORTED: Attempt = { healthy: false }

/**
 * One run of the follow loop. A plain object rather than an AbortController: with thousands of
 * feeds, a signal with listeners per feed is a good part of what following costs above the fetch.
 */
interface Run {
  stopped: boolean
  /** The open connection's controller (aborted to stop it). */
  connection: AbortController | undefined
  /** Ends the pending backoff wait early. */
  wake: (() => void) | undefined
}

/**
 * One connection's state, which is also its SSE handlers: methods and one shared timer function
 * instead of per-connection closures (they dominate a follower's heap when thousands are open).
 */
class Connection implements SseHandlers {
  readonly controller = new AbortController()
  lastByte = Date.now()
  stalled = false
  retryMs: number | undefined
  /** The last `id:` this connection dispatched (the feed keeps it when the connection ends). */
  lastEventId: string | undefined
  timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    readonly deliver: (message: SseMessage) => void,
    readonly stallMs: number,
  ) {
    // Stall detection: one timer per connection, re-armed only when it fires early.
    this.timer = setTimeout(checkStall, stallMs, this)
  }

  onMessage(message: SseMessage): void {
    if (!this.controller.signal.aborted) this.deliver(message)
  }

  onId(id: string): void {
    this.lastEventId = id
  }

  onRetry(ms: number): void {
    this.retryMs = ms
  }

  onChunk(): void {
    this.lastByte = Date.now()
  }
}

function stopRun(run: Run): void {
  run.connection?.abort()
  run.wake?.()
}

function checkStall(conn: Connection): void {
  const idle = Date.now() - conn.lastByte
  if (idle < conn.stallMs) {
    conn.timer = setTimeout(checkStall, conn.stallMs - idle, conn)
    return
  }
  conn.stalled = true
  conn.controller.abort(new TimeoutError(`status stream: no data for ${conn.stallMs} ms`, conn.stallMs))
}

/** Waits `ms`, or less when the run is stopped meanwhile. */
function sleep(ms: number, run: Run): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      run.wake = undefined
      resolve()
    }, ms)
    run.wake = () => {
      clearTimeout(timer)
      run.wake = undefined
      resolve()
    }
  })
}

/** A connection that stayed open this long counts as healthy even without news (backoff resets). */
const HEALTHY_AFTER_MS = 30_000


/**
 * Calls every listener with `value`. A throwing listener must not break following, the other
 * listeners or the process: its error is reported with `reportError` where the runtime has one
 * (browsers, Deno, Bun: the page's `error` event and console, as for an EventTarget listener),
 * else with `console.error` (Node has no `reportError`, and rethrowing there would be an uncaught
 * exception that ends a server for one listener's bug). Used by the feed and the handles.
 */
export function callEach<T>(listeners: Iterable<(value: T) => void>, value: T): void {
  for (const listener of listeners) {
    try {
      listener(value)
    } catch (error) {
      reportListenerError(error)
    }
  }
}

function reportListenerError(error: unknown): void {
  const g = globalThis as { reportError?: (error: unknown) => void; console?: { error?: (...data: unknown[]) => void } }
  try {
    if (typeof g.reportError === 'function') return g.reportError(error)
    g.console?.error?.('session-backends: a BackendHandle listener threw (following goes on):', error)
  } catch {
    // Reporting must never throw into the follower.
  }
}

/**
 * Text as its UTF-8 bytes, one char per byte: how SSE sends `Last-Event-ID`. A header carries bytes,
 * and both node:http and fetch refuse a char above U+00FF, so an id with one would fail every reconnect.
 */
function utf8Bytes(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(text)) return text
  let bytes = ''
  for (const byte of new TextEncoder().encode(text)) bytes += String.fromCharCode(byte)
  return bytes
}

// Plane's status_url is `{controller}/pub/b/{id}/status` and its stream is a sibling, `…/status-stream`.
const PLANE_STATUS_PATH = /\/pub\/b\/[^/]+\/status$/

/** The stream of a `status_url`, and whether it is Plane's (`…/pub/b/{id}/status`, a query or fragment aside). */
function streamOf(statusUrl: string): { url: string; plane: boolean } {
  const cut = statusUrl.search(/[?#]/)
  const path = cut === -1 ? statusUrl : statusUrl.slice(0, cut)
  let rest = cut === -1 ? '' : statusUrl.slice(cut)
  const hash = rest.indexOf('#')
  if (hash !== -1) rest = rest.slice(0, hash)
  if (PLANE_STATUS_PATH.test(path)) return { url: `${path}-stream${rest}`, plane: true }
  return { url: `${path.endsWith('/') ? path.slice(0, -1) : path}/stream${rest}`, plane: false }
}

/**
 * The status stream of a `status_url`, keeping a query string in place: `{status_url}/stream` on
 * the v2 API (`…/status?x=1` → `…/status/stream?x=1`), `…/pub/b/{id}/status-stream` on Plane.
 */
export function statusStreamUrl(statusUrl: string): string {
  return streamOf(statusUrl).url
}

const NO_HISTORY: readonly BackendState[] = Object.freeze([])

const DEFAULTS: Settings = {
  fetch: defaultStreamFetch,
  minDelayMs: 500,
  maxDelayMs: 30_000,
  maxAttempts: Infinity,
  stallTimeoutMs: 45_000,
  maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
}

function resolveSettings(options: StatusFeedOptions): Settings {
  // Shared when nothing is set (the common case): one object less per feed.
  if (Object.values(options).every((value) => value === undefined)) return DEFAULTS
  const reconnect = options.reconnect ?? {}
  checkMs('reconnect.minDelayMs', reconnect.minDelayMs)
  checkMs('reconnect.maxDelayMs', reconnect.maxDelayMs)
  checkMs('stallTimeoutMs', options.stallTimeoutMs)
  const maxAttempts = reconnect.maxAttempts ?? Infinity
  if (typeof maxAttempts !== 'number' || !(maxAttempts >= 1) || (Number.isFinite(maxAttempts) && !Number.isInteger(maxAttempts))) {
    throw new RangeError(`reconnect.maxAttempts must be a whole number of at least 1, or Infinity, got ${String(maxAttempts)}`)
  }
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES
  if (typeof maxEventBytes !== 'number' || !Number.isInteger(maxEventBytes) || maxEventBytes < 64) {
    throw new RangeError(`maxEventBytes must be a whole number of at least 64, got ${String(maxEventBytes)}`)
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('fetch must be a function')
  const minDelayMs = reconnect.minDelayMs ?? 500
  return {
    fetch: options.fetch ?? defaultStreamFetch,
    minDelayMs,
    maxDelayMs: Math.max(minDelayMs, reconnect.maxDelayMs ?? 30_000),
    maxAttempts,
    stallTimeoutMs: options.stallTimeoutMs ?? 45_000,
    maxEventBytes,
  }
}

/**
 * One backend's status stream, shared by every subscriber.
 *
 * - Lazy: the first {@link subscribe} starts following; when the last subscriber leaves, the
 *   connection is closed (a later subscriber starts again, resuming with `Last-Event-ID`).
 * - Stops for good at `terminated` (also when the connect response already said so), on
 *   {@link close}, and on a final error (404 → BackendNotFoundError, 204, 4xx, wrong content type,
 *   an oversized event, `maxAttempts` exhausted). Errors are only ever delivered as `'error'`
 *   events, never thrown or left as an unhandled rejection.
 * - Reconnects on end of stream, network errors, stalls, 408/429/5xx (honouring `Retry-After`),
 *   with exponential backoff and jitter, reset after a connection that delivered a new status.
 */
export class StatusFeed {
  readonly #backendId: string
  readonly #url: string
  /**
   * Whether reconnects send `Last-Event-ID`. Not to Plane: its /pub CORS allows no request header but
   * content-type, so a browser on another origin could not reconnect with it, and Plane replays the
   * whole history without it, which the rank rule drops.
   */
  readonly #resumes: boolean
  readonly #settings: Settings
  #state: BackendState
  #rank: number
  /** Every server state taken, in order (the provisional one from the connect response is not). */
  #history: BackendState[] | undefined
  /** `performance.now()` when this client first knew the backend was ready. */
  #readySeenAt: number | undefined
  /** The state is still the one derived from the connect response: the stream's own copy of that status replaces it. */
  #provisional = true
  /** The last `id:` the server gave (sent back as `Last-Event-ID`). */
  #lastEventId: string | undefined
  /** The server's `retry:` (replaces minDelayMs). */
  #retryMs: number | undefined
  #subscribers = new Set<FeedListener>()
  #observers: Set<FeedListener> | undefined
  /** The running follow loop; undefined when not following. */
  #run: Run | undefined
  #ended = false
  #error: JamsocketError | undefined
  /** Hands the connection's events to this feed (one function per feed, reused by every connection). */
  #deliver: ((message: SseMessage) => void) | undefined

  constructor(response: ConnectResponse, options: StatusFeedOptions = {}) {
    this.#backendId = response.backend_id
    const stream = streamOf(response.status_url)
    this.#url = stream.url
    // Plane's stream takes no Last-Event-ID from a page (its CORS allows only content-type).
    this.#resumes = !stream.plane
    this.#settings = resolveSettings(options)
    // Before the stream says anything, the state is the connect response's status (provisional: for
    // an ending status the response carries no termination_reason; the stream's copy fills it in).
    this.#state = { status: response.status, time: new Date().toISOString() } as BackendState
    this.#rank = statusRank(response.status)
    if (response.status === 'ready') this.#readySeenAt = performance.now()
    if (response.status === 'terminated') this.#ended = true
  }

  /** The backend's id. */
  get backendId(): string {
    return this.#backendId
  }

  /** The latest known state: from the connect response until the stream says more. */
  get state(): BackendState {
    return this.#state
  }

  /**
   * Every status the server reported, in order, each with the server's time: filled while following,
   * from the stream's replay too (a feed made after the fact gets the earlier statuses). Statuses the
   * backend skipped are absent. Empty until the stream has said something.
   */
  get history(): readonly BackendState[] {
    return this.#history ?? NO_HISTORY
  }

  /** `performance.now()` when this client first learned that the backend was `ready` (client clock). */
  get readySeenAt(): number | undefined {
    return this.#readySeenAt
  }

  /** True while following: a connection is open or a reconnect is pending. */
  get active(): boolean {
    return this.#run !== undefined
  }

  /** True once following has stopped for good (terminated, a final error, or {@link close}). */
  get closed(): boolean {
    return this.#ended
  }

  /** The final error that stopped following, if one did. */
  get error(): JamsocketError | undefined {
    return this.#error
  }

  /**
   * Adds a listener and starts following if it is the first. Returns the function that removes
   * it; when the last one leaves, following pauses. Events are not replayed: read {@link state}.
   */
  subscribe(listener: FeedListener): () => void {
    this.#subscribers.add(listener)
    if (!this.#ended && this.#run === undefined) this.#start()
    return () => {
      if (!this.#subscribers.delete(listener)) return
      if (this.#subscribers.size === 0) this.#pause()
    }
  }

  /** Adds a listener that sees every event but neither starts nor keeps following (bookkeeping). */
  observe(listener: FeedListener): () => void {
    ;(this.#observers ??= new Set()).add(listener)
    return () => void this.#observers?.delete(listener)
  }

  /**
   * Takes a state learned elsewhere (e.g. the `ready_url` answer) under the same rule as the
   * stream: only if it is ahead of the current one. Returns whether it was taken.
   */
  offer(state: BackendState): boolean {
    if (this.#ended) return false
    return this.#accept(state)
  }

  /**
   * Stops following for good and drops every listener, telling them with a `closed` event when the
   * feed had not ended already (so that waits on a shared feed settle). Idempotent.
   */
  close(): void {
    const wasEnded = this.#ended
    this.#ended = true
    this.#pause()
    if (!wasEnded) this.#emit({ type: 'closed' })
    this.#subscribers.clear()
    this.#observers = undefined
  }

  // -------------------------------------------------------------------------------------------

  #start(): void {
    const run: Run = { stopped: false, connection: undefined, wake: undefined }
    this.#run = run
    const ended = () => {
      if (this.#run === run) this.#run = undefined
    }
    // #follow does not throw; the second callback only guards against a bug becoming an unhandled rejection.
    void this.#follow(run).then(ended, ended)
  }

  /**
   * Stops the running loop. `later` defers closing the connection to a macrotask: at terminated the
   * stream is done anyway, and with many streams read in the same turn, delivering their events
   * first and closing sockets afterwards keeps the closing cost out of everyone's event delay.
   */
  #pause(later = false): void {
    const run = this.#run
    this.#run = undefined
    if (!run) return
    run.stopped = true
    if (later && run.connection) setTimeout(stopRun, 0, run)
    else stopRun(run)
  }

  /** Stops following for good; `error` (if any) goes out as a final 'error' event. */
  #end(error?: JamsocketError): void {
    if (this.#ended) return
    this.#ended = true
    this.#error = error
    this.#pause() // before emitting, so listeners see active === false and closed === true
    if (error) this.#emit({ type: 'error', error, final: true })
  }

  #emit(event: FeedEvent): void {
    callEach(this.#observers ? [...this.#subscribers, ...this.#observers] : [...this.#subscribers], event)
  }

  /**
   * The replay rule: keep the highest rank seen, drop anything at or below it. The one exception is
   * the status the connect response named: the server's own copy of it (real time, termination
   * reason) is delivered once, replacing the provisional state.
   */
  #accept(state: BackendState): boolean {
    const rank = statusRank(state.status)
    this.#record(state, rank)
    if (rank < this.#rank || (rank === this.#rank && !this.#provisional)) return false
    this.#provisional = false
    this.#rank = rank
    this.#state = state
    if (state.status === 'ready') this.#readySeenAt ??= performance.now()
    if (state.status === 'terminated') {
      // Where its time went travels with the terminal state (not enumerable: its JSON stays the wire's).
      // (A frozen state offered by a caller is left as it is.)
      if (Object.isExtensible(state)) Object.defineProperty(state, 'history', { value: this.history, enumerable: false, configurable: true })
      this.#ended = true
      this.#pause(true)
    }
    this.#emit({ type: 'status', state })
    if (state.status === 'terminated') {
      this.#subscribers.clear()
      this.#observers = undefined
    }
    return true
  }

  /**
   * The history has its own rule: one entry per status, ordered by rank. Statuses below what is
   * known are not news for listeners, but they are history: the replay of a feed made after the
   * fact, or of a stream that lags a `ready_url` answer, fills in the statuses before.
   */
  #record(state: BackendState, rank: number): void {
    const history = this.#history
    if (history === undefined) {
      this.#history = [state]
      return
    }
    let at = history.length
    while (at > 0 && statusRank(history[at - 1]!.status) > rank) at--
    if (at > 0 && history[at - 1]!.status === state.status) return
    if (at === history.length) history.push(state)
    else history.splice(at, 0, state)
  }

  async #follow(run: Run): Promise<void> {
    const s = this.#settings
    let failures = 0
    while (!run.stopped) {
      const attempt = await this.#connect(run)
      if (run.stopped) return
      if (attempt.final) return this.#end(attempt.error)
      failures = attempt.healthy ? 0 : failures + 1
      if (failures >= s.maxAttempts) {
        const cause = attempt.error
        return this.#end(
          new NetworkError(`status stream: gave up after ${failures} attempt(s) without a new status`, cause ? { cause } : undefined),
        )
      }
      if (attempt.error) {
        this.#emit({ type: 'error', error: attempt.error, final: false })
        if (run.stopped) return // a listener closed the feed
      }
      const base = reconnectBase(attempt.healthy, this.#retryMs, s.minDelayMs, s.maxDelayMs)
      let wait = backoffDelay(attempt.healthy ? 0 : failures - 1, base, s.maxDelayMs)
      if (attempt.retryAfterMs !== undefined) wait = Math.max(wait, attempt.retryAfterMs)
      await sleep(wait, run)
    }
  }

  /** One connection, from the request to the end of its body. Never throws. */
  async #connect(run: Run): Promise<Attempt> {
    const s = this.#settings
    const conn = new Connection((this.#deliver ??= (message) => this.#onMessage(message)), s.stallTimeoutMs)
    run.connection = conn.controller
    const startRank = this.#rank
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' }
      if (this.#lastEventId && this.#resumes) headers['last-event-id'] = utf8Bytes(this.#lastEventId)
      let response: Response
      try {
        response = await s.fetch(this.#url, { headers, signal: conn.controller.signal, cache: 'no-store' } as RequestInit)
      } catch (error) {
        if (run.stopped) return ABORTED
        if (conn.stalled) return { healthy: false, error: conn.controller.signal.reason as TimeoutError }
        return { healthy: false, error: new NetworkError('status stream: the request failed', { cause: codedError(error) }) }
      }
      conn.lastByte = Date.now()
      const openedAt = conn.lastByte
      if (response.status !== 200) {
        discard(response)
        return this.#classify(response)
      }
      const type = response.headers.get('content-type') ?? ''
      if (type.split(';')[0]!.trim().toLowerCase() !== 'text/event-stream') {
        discard(response)
        return {
          healthy: false,
          final: true,
          error: new ProtocolError(`status stream: expected text/event-stream, got ${JSON.stringify(type.slice(0, 100))}`, 'content-type'),
        }
      }
      if (!response.body) return { healthy: false }
      let error: JamsocketError | undefined
      let final = false
      try {
        await readEventStream(response.body, conn, { signal: conn.controller.signal, maxEventBytes: s.maxEventBytes })
      } catch (thrown) {
        if (run.stopped) return ABORTED
        if (conn.stalled) error = conn.controller.signal.reason as TimeoutError
        else if (ProtocolError.isInstance(thrown)) [error, final] = [thrown, true]
        else error = new NetworkError('status stream: the connection broke', { cause: codedError(thrown) })
      }
      if (conn.retryMs !== undefined) this.#retryMs = conn.retryMs
      const healthy = this.#rank > startRank || (!error && Date.now() - openedAt >= HEALTHY_AFTER_MS)
      return error ? { healthy, error, final } : { healthy }
    } finally {
      if (conn.lastEventId !== undefined) this.#lastEventId = conn.lastEventId
      clearTimeout(conn.timer)
      run.connection = undefined
      if (!conn.controller.signal.aborted) conn.controller.abort()
    }
  }

  #onMessage(message: SseMessage): void {
    if (message.data === '') return
    let state: BackendState
    try {
      state = parseBackendState(JSON.parse(message.data), 'status event')
    } catch (error) {
      // One unreadable event (e.g. a status this client does not know yet) is skipped, not fatal.
      const problem = ProtocolError.isInstance(error)
        ? error
        : new ProtocolError('status stream: an event is not JSON', 'data', { cause: error })
      this.#emit({ type: 'error', error: problem, final: false })
      return
    }
    this.#accept(state)
  }

  /** Maps a non-200 answer to what following does next. */
  #classify(response: Response): Attempt {
    const status = response.status
    const asked = parseRetryAfter(response.headers.get('retry-after'))
    const retryAfterMs = asked === undefined ? undefined : Math.min(MAX_RETRY_AFTER_MS, asked)
    const init = { status, operation: 'status stream', retryAfterMs }
    if (status === 204) {
      // "Stop reconnecting" (the SSE spec's way): following ends without a terminal status.
      return { healthy: false, final: true, error: new HTTPError({ ...init, serverMessage: 'the server asked not to reconnect' }) }
    }
    if (status === 404) return { healthy: false, final: true, error: new BackendNotFoundError({ ...init, serverMessage: 'unknown backend' }) }
    if (status === 429) return { healthy: false, retryAfterMs, error: new RateLimitError(init) }
    if (status === 408 || status >= 500) return { healthy: false, retryAfterMs, error: new HTTPError(init) }
    if (status === 401 || status === 403) return { healthy: false, final: true, error: new AuthenticationError(init) }
    return { healthy: false, final: true, error: new HTTPError(init) }
  }
}
