import { checkMs, deadline, type Deadline } from '../abort.js'
import type { Jamsocket } from '../client/jamsocket.js'
import { BackendTerminatedError, JamsocketError } from '../errors.js'
import { StatusFeed, type StatusFeedOptions } from '../status/feed.js'
import { BackendHandle } from '../status/handle.js'
import { timingsOf } from '../status/timings.js'
import { isEnding, type BackendState, type ConnectRequest, type ConnectResponse } from '../wire.js'
import { identityOf } from './identity.js'

/** Options of a {@link BackendPool}. */
export interface BackendPoolOptions {
  /**
   * How many keys (per identity) the pool remembers. Past it, the least recently used entry with no
   * call in flight is dropped; its backend is not terminated.
   * @default 1000
   */
  maxEntries?: number
  /**
   * How long a settled connect is reused for the same key and identity without a new call, in ms.
   * `0` shares only calls in flight, so every caller still gets a token minted for it. A reused
   * response hands every caller the same connection token.
   * @default 0
   */
  reuseMs?: number
  /**
   * How many times a connect that returned a backend that is going away (`terminating`) waits for
   * it to be `terminated` and connects again, before failing with {@link BackendTerminatedError}.
   * @default 3
   */
  maxRespawns?: number
  /**
   * Options of the shared status streams (reconnect policy, stall timeout, event size cap).
   * @default {}
   */
  status?: Omit<StatusFeedOptions, 'fetch'>
}

/** Per-call options of {@link BackendPool.connect}. */
export interface PoolConnectOptions {
  /** Rejects this caller (only) with `signal.reason` when it aborts. @default undefined */
  signal?: AbortSignal
  /** Rejects this caller (only) with a TimeoutError after this many ms. @default undefined (no limit) */
  timeoutMs?: number
}

/** Counters that show what the pool saved. */
export interface BackendPoolStats {
  /** Connects answered from a reused response (`reuseMs`) with no call. */
  hits: number
  /** Connects that joined a call already in flight. */
  coalesced: number
  /** Connect calls made to the API (respawns included). */
  calls: number
  /** Connect calls in flight now. */
  inFlight: number
  /** Status streams following now. */
  openStreams: number
  /** Entries dropped by the `maxEntries` bound. */
  evictions: number
  /**
   * Time to ready of the pool's backends, server clock (first status to `ready`): one sample per
   * backend seen to become ready while the pool followed it. Percentiles over the latest
   * 1,000; `count` and `maxMs` over all.
   */
  timeToReady: TimeToReady
}

/** A distribution of times to ready, in milliseconds (`undefined` figures until there is a sample). */
export interface TimeToReady {
  count: number
  p50Ms: number | undefined
  p95Ms: number | undefined
  maxMs: number | undefined
}

/** How many of the latest times to ready the percentiles are taken over. */
const READY_SAMPLES = 1000

/** A connect request with the key the pool needs. */
export type PoolConnectRequest = ConnectRequest & { key: string }

interface Flight {
  readonly promise: Promise<ConnectResponse>
  waiters: number
  settled: boolean
  /** Aborts the call and detaches it from its entry, so that a later caller starts afresh. */
  abandon(reason: unknown): void
}

interface Entry {
  readonly key: string
  flight?: Flight
  response?: ConnectResponse
  settledAt: number
}

// A backend id known to have terminated is remembered (bounded) so that a connect racing with its
// end is not handed out.
const TOMBSTONES = 10_000

/**
 * Shares connects by key: concurrent `connect({ key })` calls with the same identity make one HTTP
 * call, and every handle of a backend shares one status stream.
 *
 * ```ts
 * const pool = jamsocket.pool()
 * const handle = await pool.connect({ key: 'doc-42', user: 'ada' })
 * ```
 */
export class BackendPool {
  readonly #jamsocket: Jamsocket
  readonly #maxEntries: number
  readonly #reuseMs: number
  readonly #maxRespawns: number
  readonly #statusOptions: StatusFeedOptions
  readonly #entries = new Map<string, Entry>()
  readonly #feeds = new Map<string, StatusFeed>()
  /**
   * Feeds let go of when their entries were evicted, which handles may still hold: found again (one
   * stream per backend, still) for as long as any handle keeps them alive, and forgotten once none does.
   */
  readonly #dropped = new Map<string, WeakRef<StatusFeed>>()
  readonly #collected = new FinalizationRegistry<string>((id) => {
    if (this.#dropped.get(id)?.deref() === undefined) this.#dropped.delete(id)
  })
  readonly #terminated = new Set<string>()
  readonly #closed = new AbortController()
  #stats = { hits: 0, coalesced: 0, calls: 0, evictions: 0 }
  /** The latest times to ready (a ring of READY_SAMPLES), how many there were, and the largest. */
  readonly #ready = { samples: [] as number[], count: 0, maxMs: undefined as number | undefined }

  constructor(jamsocket: Jamsocket, options: BackendPoolOptions = {}) {
    const { maxEntries = 1000, reuseMs = 0, maxRespawns = 3, status = {} } = options
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`)
    if (!Number.isInteger(maxRespawns) || maxRespawns < 0) throw new RangeError(`maxRespawns must be a non-negative integer, got ${String(maxRespawns)}`)
    checkMs('reuseMs', reuseMs)
    this.#jamsocket = jamsocket
    this.#maxEntries = maxEntries
    this.#reuseMs = reuseMs
    this.#maxRespawns = maxRespawns
    this.#statusOptions = { ...status, fetch: jamsocket.fetch }
  }

  /**
   * Connects to the backend for `request.key`, sharing the call with concurrent callers of the same
   * key and identity. Each caller gets its own handle; its `signal` and `timeoutMs` reject only it,
   * and the shared call is aborted only when every caller has gone.
   */
  connect(request: PoolConnectRequest, options: PoolConnectOptions = {}): Promise<BackendHandle> {
    // Misuse rejects (as jamsocket.connect() does) rather than throwing from a promise-returning call.
    if (typeof request !== 'object' || request === null || typeof request.key !== 'string' || request.key === '') {
      return Promise.reject(new TypeError('pool.connect() needs a request with a non-empty key, e.g. pool.connect({ key: "doc-42" })'))
    }
    try {
      checkMs('timeoutMs', options.timeoutMs)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#closed.signal.aborted) return Promise.reject(new JamsocketError('the pool is closed'))
    return this.#connectShared(identityOf(request), request, options)
  }

  /** The last handed-out backend for `key` (any identity), or undefined. Makes no request. */
  get(key: string): BackendHandle | undefined {
    let latest: Entry | undefined
    for (const entry of this.#entries.values()) {
      if (entry.key === key && entry.response && (!latest || entry.settledAt >= latest.settledAt)) latest = entry
    }
    return latest?.response ? this.#wrap(latest.response) : undefined
  }

  /** How many entries (key × identity) the pool holds. */
  get size(): number {
    return this.#entries.size
  }

  /** Counters: hits, coalesced calls, calls made, calls in flight, open streams, evictions. */
  stats(): BackendPoolStats {
    let inFlight = 0
    for (const entry of this.#entries.values()) if (entry.flight && !entry.flight.settled) inFlight++
    let openStreams = 0
    for (const feed of this.#feeds.values()) if (feed.active) openStreams++
    for (const ref of this.#dropped.values()) if (ref.deref()?.active) openStreams++
    const ready = this.#ready
    const sorted = [...ready.samples].sort((a, b) => a - b)
    const rank = (p: number) => (sorted.length === 0 ? undefined : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)])
    const timeToReady: TimeToReady = { count: ready.count, p50Ms: rank(0.5), p95Ms: rank(0.95), maxMs: ready.maxMs }
    return { ...this.#stats, inFlight, openStreams, timeToReady }
  }

  /** Stops every status stream and aborts calls in flight. Handles stop following; backends keep running. */
  close(): void {
    if (this.#closed.signal.aborted) return
    this.#closed.abort(new JamsocketError('the pool is closed'))
    for (const entry of this.#entries.values()) entry.flight?.abandon(this.#closed.signal.reason)
    for (const feed of this.#feeds.values()) feed.close()
    for (const ref of this.#dropped.values()) ref.deref()?.close()
    this.#feeds.clear()
    this.#dropped.clear()
    this.#entries.clear()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }

  // -------------------------------------------------------------------------------------------

  /** Returns the entry for `id`, most recently used, evicting the oldest idle ones past the bound. */
  #touch(id: string, key: string): Entry {
    let entry = this.#entries.get(id)
    if (entry) this.#entries.delete(id)
    else entry = { key, settledAt: 0 }
    this.#entries.set(id, entry)
    if (this.#entries.size > this.#maxEntries) {
      for (const [oldId, old] of this.#entries) {
        if (this.#entries.size <= this.#maxEntries) break
        if (old === entry || (old.flight && !old.flight.settled)) continue
        this.#entries.delete(oldId)
        this.#stats.evictions++
        if (old.response) this.#letGoOfFeed(old.response.backend_id)
      }
    }
    return entry
  }

  #reusable(entry: Entry): ConnectResponse | undefined {
    const response = entry.response
    if (!response || this.#reuseMs === 0 || this.#terminated.has(response.backend_id)) return undefined
    if (Date.now() - entry.settledAt >= this.#reuseMs) return undefined
    const state = this.#feedOf(response.backend_id)?.state
    return state && isEnding(state.status) ? undefined : response
  }

  /** Starts the shared call. The entry is set synchronously so that a concurrent caller joins it. */
  #fly(id: string, entry: Entry, request: PoolConnectRequest): Flight {
    const controller = new AbortController()
    const flight: Flight = {
      promise: this.#connectUntilAlive(request, controller.signal),
      waiters: 0,
      settled: false,
      abandon: (reason) => {
        if (entry.flight === flight) entry.flight = undefined
        controller.abort(reason)
      },
    }
    entry.flight = flight
    flight.promise.then(
      (response) => {
        flight.settled = true
        if (entry.flight === flight) {
          entry.flight = undefined
          entry.response = response
          entry.settledAt = Date.now()
        }
      },
      () => {
        flight.settled = true
        // Failures are not cached: the next connect calls again.
        if (entry.flight === flight) entry.flight = undefined
        // Drop an entry left empty, but never one a newer call has taken over meanwhile.
        if (!entry.response && !entry.flight && this.#entries.get(id) === entry) this.#entries.delete(id)
      },
    )
    return flight
  }

  /**
   * One caller's connect: reuse, join the call in flight, or start one (synchronously, before the
   * first await, so that a concurrent caller joins it).
   */
  async #connectShared(id: string, request: PoolConnectRequest, options: PoolConnectOptions): Promise<BackendHandle> {
    const requestedAt = performance.now()
    const limit = deadline(options.signal, options.timeoutMs, 'pool.connect()')
    try {
      for (let again = 0; ; again++) {
        const entry = this.#touch(id, request.key)
        const reused = this.#reusable(entry)
        if (reused) {
          this.#stats.hits++
          return this.#wrap(reused, requestedAt)
        }
        let flight = entry.flight
        if (flight) this.#stats.coalesced++
        else flight = this.#fly(id, entry, request)
        const response = await this.#join(flight, limit)
        // The pool may have closed meanwhile: a handle now would start a stream nobody closes.
        if (this.#closed.signal.aborted) throw this.#closed.signal.reason
        // The backend may have ended between its answer and this caller's turn: never hand it out.
        if (!this.#terminated.has(response.backend_id)) return this.#wrap(response, requestedAt)
        if (again >= this.#maxRespawns) throw new BackendTerminatedError(response.backend_id, { status: 'terminated', time: new Date().toISOString() })
        if (this.#closed.signal.aborted) throw this.#closed.signal.reason
      }
    } finally {
      limit.dispose()
    }
  }

  /** Waits on a shared call: the caller's own signal and timeout reject only it. */
  async #join(flight: Flight, limit: Deadline): Promise<ConnectResponse> {
    flight.waiters++
    try {
      return await new Promise<ConnectResponse>((resolve, reject) => {
        const onAbort = () => reject(limit.reason())
        if (limit.signal.aborted) return onAbort()
        limit.signal.addEventListener('abort', onAbort, { once: true })
        flight.promise.then(resolve, reject).finally(() => limit.signal.removeEventListener('abort', onAbort))
      })
    } finally {
      flight.waiters--
      // The last waiter gone: nobody wants the answer, so stop the call (a new caller starts afresh).
      if (flight.waiters === 0 && !flight.settled) flight.abandon(limit.reason())
    }
  }

  /** Connects; a backend that is going away is waited out and connected again (bounded). */
  async #connectUntilAlive(request: PoolConnectRequest, signal: AbortSignal): Promise<ConnectResponse> {
    for (let respawns = 0; ; respawns++) {
      this.#stats.calls++
      const response = (await this.#jamsocket.connect(request, { signal })).toJSON()
      const known = this.#feedOf(response.backend_id)?.state
      const ending = this.#terminated.has(response.backend_id) || isEnding(response.status) || (known !== undefined && isEnding(known.status))
      if (!ending) return response
      if (respawns >= this.#maxRespawns) {
        const state: BackendState = known && isEnding(known.status) ? known : { status: 'terminated', time: new Date().toISOString() }
        throw new BackendTerminatedError(response.backend_id, state, { history: [...(this.#feedOf(response.backend_id)?.history ?? [])] })
      }
      await this.#untilTerminated(response, signal)
    }
  }

  /** Resolves once the backend is terminated (or its stream can tell no more), rejects on abort. */
  #untilTerminated(response: ConnectResponse, signal: AbortSignal): Promise<void> {
    if (this.#terminated.has(response.backend_id)) return Promise.resolve()
    const feed = this.#feedFor(response)
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        unsubscribe()
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = () => {
        done()
        reject(signal.reason)
      }
      const unsubscribe = feed.subscribe((event) => {
        // A stream that stopped on an error (e.g. 404: the backend is gone) or was closed has nothing more to say.
        if ((event.type === 'status' && event.state.status === 'terminated') || (event.type === 'error' && feed.closed) || event.type === 'closed') {
          done()
          resolve()
        }
      })
      if (signal.aborted) onAbort()
      else if (feed.state.status === 'terminated' || feed.closed) {
        done()
        resolve()
      } else signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  #wrap(response: ConnectResponse, requestedAt?: number): BackendHandle {
    return new BackendHandle(response, { ...this.#statusOptions, feed: this.#feedFor(response), requestedAt })
  }

  /** The live feed of a backend the pool knows, held or let go of, or undefined. */
  #feedOf(id: string): StatusFeed | undefined {
    const held = this.#feeds.get(id)
    if (held && !held.closed) return held
    const dropped = this.#dropped.get(id)?.deref()
    return dropped && !dropped.closed ? dropped : undefined
  }

  /** The one status stream of a backend, created on first need; dropped when the backend ends. */
  #feedFor(response: ConnectResponse): StatusFeed {
    const id = response.backend_id
    let feed = this.#feedOf(id)
    if (feed) {
      if (this.#feeds.get(id) !== feed) {
        // Let go of at an eviction but still followed by a handle: held again.
        this.#dropped.delete(id)
        this.#collected.unregister(feed)
        this.#feeds.set(id, feed)
      }
      return feed
    }
    feed = new StatusFeed(response, this.#statusOptions)
    this.#feeds.set(id, feed)
    const created = feed
    created.observe((event) => {
      if (event.type !== 'status') return
      if (event.state.status === 'ready') this.#sampleReady(created)
      if (event.state.status !== 'terminated') return
      this.#forget(id)
      if (this.#feeds.get(id) === created) this.#feeds.delete(id)
      if (this.#dropped.get(id)?.deref() === created) this.#dropped.delete(id)
    })
    return feed
  }

  /** One time-to-ready sample, from the backend's own history (server clock). */
  #sampleReady(feed: StatusFeed): void {
    const ms = timingsOf(feed.history).readyMs
    if (ms === undefined) return
    const ready = this.#ready
    ready.samples[ready.count % READY_SAMPLES] = ms
    ready.count++
    ready.maxMs = Math.max(ready.maxMs ?? ms, ms)
  }

  /**
   * Lets go of a backend's feed when no entry refers to it any more. Handles that hold it (or a stream
   * that is open) keep it alive, and the pool finds it again for them through the weak reference.
   */
  #letGoOfFeed(backendId: string): void {
    const feed = this.#feeds.get(backendId)
    if (!feed) return
    for (const entry of this.#entries.values()) if (entry.response?.backend_id === backendId) return
    this.#feeds.delete(backendId)
    this.#dropped.set(backendId, new WeakRef(feed))
    this.#collected.register(feed, backendId, feed)
  }

  /** The backend ended: its entries go, so that the next connect for the key spawns again. */
  #forget(backendId: string): void {
    this.#terminated.add(backendId)
    if (this.#terminated.size > TOMBSTONES) this.#terminated.delete(this.#terminated.values().next().value!)
    for (const [id, entry] of this.#entries) {
      if (entry.response?.backend_id === backendId) {
        entry.response = undefined
        if (!entry.flight) this.#entries.delete(id)
      }
    }
  }
}
