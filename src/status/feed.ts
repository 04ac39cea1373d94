/**
 * StatusFeed: ONE status stream (`{status_url}/stream`) for one backend, shared by any number of
 * subscribers (handles). It follows while someone subscribes, reconnects when the stream drops,
 * and delivers every status at most once, in order, never backwards (DESIGN §3).
 *
 * Imports nothing from `node:*`: it runs in browsers and edge runtimes.
 */
import { checkMs, delay, type FetchLike } from '../abort.js'
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
import { backoffDelay, parseRetryAfter } from './backoff.js'
import { DEFAULT_MAX_EVENT_BYTES, readEventStream, type SseMessage } from './sse.js'

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
  /** The fetch used for the status stream. @default globalThis.fetch */
  fetch?: FetchLike
  /** Reconnect timing. @default { minDelayMs: 500, maxDelayMs: 30_000, maxAttempts: Infinity } */
  reconnect?: ReconnectOptions
  /**
   * A stream that sends no byte at all (not even a `:` keep-alive comment) for this long is treated
   * as dead and reconnected. Plane sends a comment every 15 s. @default 45_000
   */
  stallTimeoutMs?: number
  /**
   * The largest event (or run of lines without a blank line) accepted, in characters; past it the
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

/** A connection that stayed open this long counts as healthy even without news (backoff resets). */
const HEALTHY_AFTER_MS = 30_000

/** Calls the global fetch at call time (a polyfill or mock installed later is honoured). */
const globalFetch: FetchLike = (input, init) => globalThis.fetch(input, init)

/**
 * A throwing listener must not break following or the other listeners: report its error the way
 * an EventTarget does (`reportError` where it exists, else thrown outside this call stack).
 */
function reportListenerError(error: unknown): void {
  const report = (globalThis as { reportError?: (error: unknown) => void }).reportError
  if (typeof report === 'function') report(error)
  else
    queueMicrotask(() => {
      throw error
    })
}

/** `{status_url}/stream`, keeping a query string in place (`…/status?x=1` → `…/status/stream?x=1`). */
export function statusStreamUrl(statusUrl: string): string {
  const cut = statusUrl.search(/[?#]/)
  const path = cut === -1 ? statusUrl : statusUrl.slice(0, cut)
  let rest = cut === -1 ? '' : statusUrl.slice(cut)
  const hash = rest.indexOf('#')
  if (hash !== -1) rest = rest.slice(0, hash)
  return `${path.endsWith('/') ? path.slice(0, -1) : path}/stream${rest}`
}

function resolveSettings(options: StatusFeedOptions): Settings {
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
    fetch: options.fetch ?? globalFetch,
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
  readonly #settings: Settings
  #state: BackendState
  #rank: number
  /** The state is still the one derived from the connect response: the stream's own copy of that status replaces it. */
  #provisional = true
  /** The last `id:` the server gave (sent back as `Last-Event-ID`). */
  #lastEventId: string | undefined
  /** The server's `retry:` (replaces minDelayMs). */
  #retryMs: number | undefined
  #subscribers = new Set<FeedListener>()
  #observers = new Set<FeedListener>()
  /** Aborts the running follow loop; undefined when not following. */
  #loop: AbortController | undefined
  #ended = false
  #error: JamsocketError | undefined

  constructor(response: ConnectResponse, options: StatusFeedOptions = {}) {
    this.#backendId = response.backend_id
    this.#url = statusStreamUrl(response.status_url)
    this.#settings = resolveSettings(options)
    // Before the stream says anything, the state is the connect response's status (provisional: for
    // an ending status the response carries no termination_reason; the stream's copy fills it in).
    this.#state = { status: response.status, time: new Date().toISOString() } as BackendState
    this.#rank = statusRank(response.status)
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

  /** True while following: a connection is open or a reconnect is pending. */
  get active(): boolean {
    return this.#loop !== undefined
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
    if (!this.#ended && this.#loop === undefined) this.#start()
    return () => {
      if (!this.#subscribers.delete(listener)) return
      if (this.#subscribers.size === 0) this.#pause()
    }
  }

  /** Adds a listener that sees every event but neither starts nor keeps following (bookkeeping). */
  observe(listener: FeedListener): () => void {
    this.#observers.add(listener)
    return () => void this.#observers.delete(listener)
  }

  /**
   * Takes a state learned elsewhere (e.g. the `ready_url` answer) under the same rule as the
   * stream: only if it is ahead of the current one. Returns whether it was taken.
   */
  offer(state: BackendState): boolean {
    if (this.#ended) return false
    return this.#accept(state)
  }

  /** Stops following for good and drops every listener. Idempotent. */
  close(): void {
    this.#ended = true
    this.#pause()
    this.#subscribers.clear()
    this.#observers.clear()
  }

  // -------------------------------------------------------------------------------------------

  #start(): void {
    const loop = new AbortController()
    this.#loop = loop
    void this.#follow(loop.signal).then(
      () => this.#loopEnded(loop),
      // #follow does not throw; this only guards against a bug turning into an unhandled rejection.
      () => this.#loopEnded(loop),
    )
  }

  #loopEnded(loop: AbortController): void {
    if (this.#loop === loop) this.#loop = undefined
  }

  #pause(): void {
    const loop = this.#loop
    this.#loop = undefined
    loop?.abort()
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
    const listeners = [...this.#subscribers, ...this.#observers]
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (error) {
        reportListenerError(error)
      }
    }
  }

  /**
   * The replay rule: keep the highest rank seen, drop anything at or below it. The one exception is
   * the status the connect response named: the server's own copy of it (real time, termination
   * reason) is delivered once, replacing the provisional state.
   */
  #accept(state: BackendState): boolean {
    const rank = statusRank(state.status)
    if (rank < this.#rank || (rank === this.#rank && !this.#provisional)) return false
    this.#provisional = false
    this.#rank = rank
    this.#state = state
    if (state.status === 'terminated') {
      this.#ended = true
      this.#pause()
    }
    this.#emit({ type: 'status', state })
    if (state.status === 'terminated') {
      this.#subscribers.clear()
      this.#observers.clear()
    }
    return true
  }

  async #follow(signal: AbortSignal): Promise<void> {
    const s = this.#settings
    let failures = 0
    while (!signal.aborted) {
      const attempt = await this.#connect(signal)
      if (signal.aborted) return
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
        if (signal.aborted) return // a listener closed the feed
      }
      const base = Math.min(this.#retryMs ?? s.minDelayMs, s.maxDelayMs)
      let wait = backoffDelay(attempt.healthy ? 0 : failures - 1, base, s.maxDelayMs)
      if (attempt.retryAfterMs !== undefined) wait = Math.max(wait, attempt.retryAfterMs)
      try {
        await delay(wait, signal)
      } catch {
        return
      }
    }
  }

  /** One connection, from the request to the end of its body. Never throws. */
  async #connect(outer: AbortSignal): Promise<Attempt> {
    const s = this.#settings
    const controller = new AbortController()
    const onOuterAbort = () => controller.abort(outer.reason)
    outer.addEventListener('abort', onOuterAbort, { once: true })
    const startRank = this.#rank
    let stalled = false
    let lastByte = Date.now()
    // Stall detection: one timer per connection, re-armed only when it fires early (cheap for many streams).
    let timer: ReturnType<typeof setTimeout> | undefined
    const check = () => {
      const idle = Date.now() - lastByte
      if (idle < s.stallTimeoutMs) {
        timer = setTimeout(check, s.stallTimeoutMs - idle)
        return
      }
      stalled = true
      controller.abort(new TimeoutError(`status stream: no data for ${s.stallTimeoutMs} ms`, s.stallTimeoutMs))
    }
    timer = setTimeout(check, s.stallTimeoutMs)
    const advanced = () => this.#rank > startRank
    const failed = (error: JamsocketError, extra: Partial<Attempt> = {}): Attempt => ({ healthy: advanced(), error, ...extra })

    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' }
      if (this.#lastEventId) headers['last-event-id'] = this.#lastEventId
      let response: Response
      try {
        response = await s.fetch(this.#url, { headers, signal: controller.signal, cache: 'no-store' } as RequestInit)
      } catch (error) {
        if (outer.aborted) return ABORTED
        if (stalled) return failed(controller.signal.reason as TimeoutError)
        return failed(new NetworkError('status stream: the request failed', { cause: error }))
      }
      lastByte = Date.now()
      const openedAt = lastByte
      if (response.status !== 200) {
        void response.body?.cancel().catch(() => {})
        return this.#classify(response)
      }
      const type = response.headers.get('content-type') ?? ''
      if (type.split(';')[0]!.trim().toLowerCase() !== 'text/event-stream') {
        void response.body?.cancel().catch(() => {})
        return {
          healthy: false,
          final: true,
          error: new ProtocolError(`status stream: expected text/event-stream, got ${JSON.stringify(type.slice(0, 100))}`, 'content-type'),
        }
      }
      if (!response.body) return { healthy: false }
      try {
        await readEventStream(
          response.body,
          {
            onMessage: (message) => {
              if (!controller.signal.aborted) this.#onMessage(message)
            },
            onRetry: (ms) => {
              this.#retryMs = ms
            },
          },
          {
            signal: controller.signal,
            maxEventBytes: s.maxEventBytes,
            onChunk: () => {
              lastByte = Date.now()
            },
          },
        )
        return { healthy: advanced() || Date.now() - openedAt >= HEALTHY_AFTER_MS }
      } catch (error) {
        if (outer.aborted) return ABORTED
        if (stalled) return failed(controller.signal.reason as TimeoutError)
        if (ProtocolError.isInstance(error)) return failed(error, { final: true })
        return failed(new NetworkError('status stream: the connection broke', { cause: error }))
      }
    } finally {
      clearTimeout(timer)
      outer.removeEventListener('abort', onOuterAbort)
      if (!controller.signal.aborted) controller.abort()
    }
  }

  #onMessage(message: SseMessage): void {
    if (message.id !== undefined) this.#lastEventId = message.id
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
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
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
