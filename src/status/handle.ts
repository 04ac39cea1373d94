/**
 * BackendHandle: a ConnectResponse plus live status following (typed events, waitUntilReady,
 * async iteration). Holds no account secret and imports nothing from `node:*`, so a browser can
 * rebuild one from the JSON a server handed it: `new BackendHandle(connectResponse)`.
 */
import { checkMs, deadline, delay, discard } from '../abort.js'
import { BackendTerminatedError, JamsocketError } from '../errors.js'
import { isEnding, parseBackendState, type BackendState, type BackendStatus, type ConnectResponse } from '../wire.js'
import { callEach, StatusFeed, type FeedEvent, type StatusFeedOptions } from './feed.js'
import { timingsOf, type BackendTimings } from './timings.js'

/** Options of a {@link BackendHandle}. */
export type BackendHandleOptions = StatusFeedOptions & {
  /**
   * A feed to follow instead of creating one (a pool shares one feed among all handles of a
   * backend). The handle does not own it: its `close()` only removes its own subscriptions.
   * @default a new StatusFeed owned by the handle
   */
  feed?: StatusFeed
  /**
   * `performance.now()` when the connect request that returned this response was sent (`connect()`
   * sets it). With it, {@link BackendHandle.timings} has `requestToReadyMs`, on this client's clock.
   * @default undefined (no client-side figure)
   */
  requestedAt?: number
}

/** The `'terminated'` state, with where the backend's time went (not enumerable: its JSON is the wire's). */
export type TerminatedEvent = StateOf<'terminated'> & {
  /** Every status reached, in order, with the server's time (see {@link BackendHandle.history}). */
  readonly history: readonly BackendState[]
}

/** The state carried by the event of one status. */
export type StateOf<S extends BackendStatus> = BackendState & { status: S }

/** The events of a {@link BackendHandle} and their payloads. */
export type BackendHandleEvents = { [S in Exclude<BackendStatus, 'terminated'>]: StateOf<S> } & {
  /** The terminal state; its `history` (not enumerable) says where the time went. */
  terminated: TerminatedEvent
  /** Every new status, in order. */
  status: BackendState
  /** A problem following the status stream; see {@link BackendHandle.on}. */
  error: JamsocketError
}

/** The name of a {@link BackendHandle} event. */
export type BackendHandleEvent = keyof BackendHandleEvents

/** Options of {@link BackendHandle.waitUntilReady}. */
export interface WaitUntilReadyOptions {
  /** Stops waiting; the promise rejects with `signal.reason`. */
  signal?: AbortSignal
  /** Gives up after this many milliseconds with a TimeoutError. @default no limit */
  timeoutMs?: number
}

/** The user's handlers, by event name (an array each: a handler added twice is called twice). */
type Handlers = Map<BackendHandleEvent, ((payload: never) => void)[]>

/**
 * Calls the handlers of one event, from a copy (a handler may add or remove some); one that throws
 * is reported and the others still run (callEach), so no listener misses a status for good.
 */
function deliver(handlers: Handlers, type: BackendHandleEvent, payload: unknown): void {
  const list = handlers.get(type) as ((payload: unknown) => void)[] | undefined
  if (list) callEach([...list], payload)
}
type InternalListener = (event: FeedEvent) => void

/** Removes the first occurrence of `item`, if any. */
function remove(list: unknown[], item: unknown): void {
  const at = list.indexOf(item)
  if (at !== -1) list.splice(at, 1)
}

/** At most one `ready_url` request per this many milliseconds when the server answers 202 quickly. */
const READY_POLL_MIN_INTERVAL_MS = 250

/**
 * A backend returned by `connect()`: every ConnectResponse field as received, plus the backend's
 * live status.
 *
 * Following is lazy: no request is made until a listener is added, an iteration starts or
 * `waitUntilReady()` is called, and the stream is released again when none is left. It stops for
 * good at `terminated` and on {@link close}. Events are not replayed to late listeners: read
 * {@link state}.
 */
export class BackendHandle implements ConnectResponse, Disposable {
  declare readonly backend_id: string
  declare readonly spawned: boolean
  /** The status in the connect response (as received); the live one is {@link state}. */
  declare readonly status: BackendStatus
  declare readonly token: string
  declare readonly url: string
  declare readonly secret_token?: string | null
  declare readonly status_url: string
  declare readonly ready_url: string | null

  readonly #feed: StatusFeed
  readonly #ownsFeed: boolean
  #handlers: Handlers | undefined
  /** Waits and iterations in progress (created on first use: most handles never need it). */
  #internal: Set<InternalListener> | undefined
  readonly #fetch: StatusFeedOptions['fetch']
  #onceWrappers: Map<unknown, Map<string, unknown>> | undefined
  #unsubscribe: (() => void) | undefined
  #closed = false
  /** Client clock (`performance.now()`): the connect request sent, and its answer received. */
  readonly #clock: { requestedAt: number; answeredAt: number } | undefined

  constructor(response: ConnectResponse, options: BackendHandleOptions = {}) {
    this.backend_id = response.backend_id
    this.spawned = response.spawned
    this.status = response.status
    this.token = response.token
    this.url = response.url
    // Always set (undefined when absent), as a declared field was: toJSON leaves an undefined one out.
    this.secret_token = response.secret_token
    this.status_url = response.status_url
    // null stays null (toJSON gives back what was received); a missing one is ''.
    this.ready_url = response.ready_url === null ? null : (response.ready_url ?? '')
    const { feed, requestedAt, ...feedOptions } = options
    if (requestedAt !== undefined) {
      if (typeof requestedAt !== 'number' || !Number.isFinite(requestedAt)) throw new TypeError(`requestedAt must be a performance.now() time, got ${String(requestedAt)}`)
      this.#clock = { requestedAt, answeredAt: performance.now() }
    }
    this.#fetch = options.fetch
    if (feed !== undefined) {
      if (!(feed instanceof StatusFeed) || feed.backendId !== response.backend_id) {
        throw new TypeError(`feed must be a StatusFeed of backend ${response.backend_id}`)
      }
      this.#feed = feed
      this.#ownsFeed = false
    } else {
      this.#feed = new StatusFeed(response, feedOptions)
      this.#ownsFeed = true
    }
  }

  /** The latest known state (from the connect response until the stream says more). */
  get state(): BackendState {
    return this.#feed.state
  }

  /**
   * Every status the backend reached, in order, each with the server's time. Filled while the handle
   * follows (listens, waits or iterates); a handle made after the fact gets the earlier statuses from
   * the stream's replay. Statuses the backend skipped are absent. Shared by every handle of a pooled
   * backend.
   */
  get history(): readonly BackendState[] {
    return this.#feed.history
  }

  /**
   * How long each phase took, from {@link history} (server clock): `phases` has one entry per
   * reached status but the latest, `readyMs` the time from the first status seen to `ready`. On a
   * handle from `connect()`, `requestToReadyMs` is what this client saw from its request to `ready`
   * (client clock: the two clocks are never mixed in one figure).
   */
  get timings(): BackendTimings {
    const timings = timingsOf(this.#feed.history)
    const clock = this.#clock
    const seen = this.#feed.readySeenAt
    // A backend that was already ready when this request was answered was ready to this client then.
    if (clock && seen !== undefined) timings.requestToReadyMs = Math.max(seen, clock.answeredAt) - clock.requestedAt
    return timings
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Calls `handler` for each new status from now on: `'status'` for every one, or a status name
   * (`'ready'`, `'terminated'`, …) for that one only (at most once each). `'error'` reports a
   * problem following the stream: a reconnect follows unless following stopped (then
   * {@link waitUntilReady} rejects with the same error). Returns a function that removes it.
   */
  on<K extends BackendHandleEvent>(event: K, handler: (payload: BackendHandleEvents[K]) => void): () => void {
    if (this.#closed) return () => {}
    const handlers = (this.#handlers ??= new Map())
    const list = handlers.get(event)
    if (list) list.push(handler)
    else handlers.set(event, [handler])
    this.#sync()
    return () => this.off(event, handler)
  }

  /** Removes a handler added with {@link on} or {@link once}. */
  off<K extends BackendHandleEvent>(event: K, handler: (payload: BackendHandleEvents[K]) => void): void {
    const list = this.#handlers?.get(event)
    if (!list) return
    remove(list, handler)
    const wrappers = this.#onceWrappers?.get(handler)
    const wrapper = wrappers?.get(event)
    if (wrapper) {
      wrappers!.delete(event)
      if (wrappers!.size === 0) this.#onceWrappers!.delete(handler)
      remove(list, wrapper)
    }
    this.#sync()
  }

  /** Like {@link on}, removed after its first call. */
  once<K extends BackendHandleEvent>(event: K, handler: (payload: BackendHandleEvents[K]) => void): () => void {
    const wrapper = (payload: BackendHandleEvents[K]) => {
      this.off(event, handler)
      handler(payload)
    }
    if (this.#closed) return () => {}
    this.#onceWrappers ??= new Map()
    let wrappers = this.#onceWrappers.get(handler)
    if (!wrappers) this.#onceWrappers.set(handler, (wrappers = new Map()))
    wrappers.set(event, wrapper)
    return this.on(event, wrapper)
  }

  /**
   * Resolves with this handle once the backend is `ready` (at once if it already is).
   * Rejects with {@link BackendTerminatedError} (carrying the state) when it reaches
   * terminating/hard-terminating/terminated first, with TimeoutError after `timeoutMs`, with
   * `signal.reason` on abort, and with the final error when following stops (e.g.
   * BackendNotFoundError on 404). Settles exactly once. Uses `ready_url` as a long-poll when the
   * response has one; the status stream in every case.
   */
  waitUntilReady(options: WaitUntilReadyOptions = {}): Promise<this> {
    try {
      checkMs('timeoutMs', options.timeoutMs)
    } catch (error) {
      return Promise.reject(error)
    }
    const state = this.state
    if (state.status === 'ready') return Promise.resolve(this)
    if (isEnding(state.status)) return Promise.reject(this.#terminatedError(state))
    const stopped = this.#stoppedError()
    if (stopped) return Promise.reject(stopped)
    if (options.signal?.aborted) return Promise.reject(options.signal.reason)

    return new Promise<this>((resolve, reject) => {
      const guard = deadline(options.signal, options.timeoutMs, 'waitUntilReady()')
      let settled = false
      const settle = (error?: unknown) => {
        if (settled) return
        settled = true
        this.#internal?.delete(listener)
        guard.signal.removeEventListener('abort', onAbort)
        guard.dispose()
        poll?.abort()
        this.#sync()
        if (error === undefined) resolve(this)
        else reject(error)
      }
      const onAbort = () => settle(guard.reason())
      const listener: InternalListener = (event) => {
        if (event.type === 'status') {
          if (event.state.status === 'ready') settle()
          else if (isEnding(event.state.status)) settle(this.#terminatedError(event.state))
        } else if (event.type === 'error') {
          if (event.final) settle(event.error)
        } else settle(this.#stoppedError() ?? new JamsocketError(`stopped following backend ${this.backend_id}: the handle was closed`))
      }
      (this.#internal ??= new Set()).add(listener)
      guard.signal.addEventListener('abort', onAbort, { once: true })
      // A handle on a shared feed (the pool's) waits on the one shared stream: a long-poll per
      // caller would undo the sharing.
      const poll = this.ready_url && this.#ownsFeed ? new AbortController() : undefined
      this.#sync()
      if (poll) void this.#pollReady(poll.signal, settle).catch(() => {})
    })
  }

  /**
   * Iterates over the new states from now on, in order; ends after `terminated` or on
   * {@link close}, throws the final error when following stops on one. Breaking out of the loop
   * releases the subscription.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<BackendState> {
    const queue: BackendState[] = []
    let pending: { resolve: (r: IteratorResult<BackendState>) => void; reject: (e: unknown) => void } | undefined
    let finished = false
    let failure: unknown
    const finish = (error?: unknown) => {
      if (finished) return
      finished = true
      failure = error
      this.#internal?.delete(listener)
      this.#sync()
      const waiter = pending
      pending = undefined
      if (!waiter) return
      if (failure !== undefined) {
        waiter.reject(failure)
        failure = undefined
      } else waiter.resolve({ value: undefined, done: true })
    }
    const listener: InternalListener = (event) => {
      if (event.type === 'status') {
        if (pending) {
          const waiter = pending
          pending = undefined
          waiter.resolve({ value: event.state, done: false })
        } else queue.push(event.state)
        if (event.state.status === 'terminated') finish()
      } else if (event.type === 'error') {
        if (event.final) finish(event.error)
      } else finish()
    }
    if (this.#closed || this.#feed.closed) {
      finished = true
      failure = this.#closed ? undefined : this.#feed.error
    } else {
      (this.#internal ??= new Set()).add(listener)
      this.#sync()
    }
    const iterator: AsyncIterableIterator<BackendState> = {
      next: () => {
        const value = queue.shift()
        if (value !== undefined) return Promise.resolve({ value, done: false })
        if (finished) {
          const error = failure
          failure = undefined
          return error !== undefined ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true })
        }
        return new Promise((resolve, reject) => (pending = { resolve, reject }))
      },
      return: () => {
        queue.length = 0
        failure = undefined
        finish()
        return Promise.resolve({ value: undefined, done: true })
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  /**
   * Stops following (the backend keeps running): removes every listener, ends iterations, rejects
   * pending waits, and closes the status stream unless the feed is shared. Idempotent.
   */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    if (this.#ownsFeed) this.#feed.close()
    this.#handlers?.clear()
    this.#onceWrappers = undefined
    const internal = this.#internal
    this.#internal = undefined
    if (internal) for (const listener of [...internal]) listener({ type: 'closed' })
  }

  /** Same as {@link close}: `using handle = …` closes it at the end of the block. */
  [Symbol.dispose](): void {
    this.close()
  }

  /** Exactly the plain ConnectResponse as received, so `JSON.stringify(handle)` leaks nothing else. */
  toJSON(): ConnectResponse {
    // Rebuilt from the readonly fields (one object less per handle); secret_token only when it was sent.
    const json: ConnectResponse = {
      backend_id: this.backend_id,
      spawned: this.spawned,
      status: this.status,
      token: this.token,
      url: this.url,
      status_url: this.status_url,
      ready_url: this.ready_url,
    }
    if (this.secret_token !== undefined) json.secret_token = this.secret_token
    return json
  }

  // -------------------------------------------------------------------------------------------

  readonly #onFeed = (event: FeedEvent): void => {
    // Internal consumers (waits, iterations) first, so that a user handler calling close() on
    // 'ready' still lets a pending waitUntilReady resolve.
    if (this.#internal) for (const listener of [...this.#internal]) listener(event)
    const handlers = this.#handlers
    if (!handlers) return
    if (event.type === 'status') {
      deliver(handlers, event.state.status, event.state)
      deliver(handlers, 'status', event.state)
    } else if (event.type === 'error') deliver(handlers, 'error', event.error)
  }

  /** Follows (subscribes to the feed) exactly while someone listens, iterates or waits. */
  #sync(): void {
    let wanted = !this.#closed && (this.#internal?.size ?? 0) > 0
    if (!wanted && !this.#closed && this.#handlers) {
      for (const list of this.#handlers.values()) if (list.length > 0) wanted = true
    }
    if (wanted && !this.#unsubscribe && !this.#feed.closed) this.#unsubscribe = this.#feed.subscribe(this.#onFeed)
    else if (!wanted && this.#unsubscribe) {
      this.#unsubscribe()
      this.#unsubscribe = undefined
    }
  }

  #terminatedError(state: BackendState): BackendTerminatedError {
    return new BackendTerminatedError(this.backend_id, state, { history: [...this.#feed.history] })
  }

  /** Why waiting cannot succeed any more, if it cannot. */
  #stoppedError(): JamsocketError | undefined {
    if (this.#closed) return new JamsocketError(`stopped following backend ${this.backend_id}: the handle was closed`)
    if (this.#feed.closed) return this.#feed.error ?? new JamsocketError(`stopped following backend ${this.backend_id}: the status feed was closed`)
    return undefined
  }

  /**
   * The `ready_url` long-poll: 200 with a ready state resolves, 410 rejects with the state, 202
   * polls again. Anything else (errors, other answers) leaves the decision to the status stream.
   */
  async #pollReady(signal: AbortSignal, settle: (error?: unknown) => void): Promise<void> {
    const fetch = this.#readyFetch()
    const url = this.ready_url
    while (url && !signal.aborted) {
      const started = Date.now()
      let response: Response
      try {
        response = await fetch(url, { headers: { accept: 'application/json' }, signal, cache: 'no-store' } as RequestInit)
      } catch {
        return
      }
      if (response.status === 202) {
        discard(response)
        const elapsed = Date.now() - started
        if (elapsed < READY_POLL_MIN_INTERVAL_MS) {
          try {
            await delay(READY_POLL_MIN_INTERVAL_MS - elapsed, signal)
          } catch {
            return
          }
        }
        continue
      }
      if (response.status !== 200 && response.status !== 410) {
        discard(response)
        return
      }
      let state: BackendState | undefined
      try {
        state = parseBackendState(JSON.parse(await response.text()), 'ready_url answer')
      } catch {
        state = undefined
      }
      if (signal.aborted) return
      if (response.status === 410) {
        // What ended it is news for handle.state too, not only for this wait.
        if (state) this.#feed.offer(state)
        settle(state ? this.#terminatedError(state) : new BackendTerminatedError(this.backend_id, { status: 'terminated', time: new Date().toISOString() }))
      } else if (state?.status === 'ready') {
        this.#feed.offer(state)
        settle()
      } else if (state && isEnding(state.status)) {
        this.#feed.offer(state)
        settle(this.#terminatedError(state))
      }
      return
    }
  }

  #readyFetch(): NonNullable<StatusFeedOptions['fetch']> {
    return this.#fetch ?? ((input, init) => globalThis.fetch(input, init))
  }
}
