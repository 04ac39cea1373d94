/**
 * The options of {@link Jamsocket}: one type, every field documented with its default, and the
 * validation that turns what a caller passed into the settings the client runs with.
 */
import { checkMs, type FetchLike } from '../abort.js'
import { MAX_RETRY_AFTER_MS } from '../status/backoff.js'

/** How failed requests are retried. Every field is optional. */
export interface RetryOptions {
  /**
   * How many times a failed request is retried (so at most `retries + 1` attempts).
   * @default 2
   */
  retries?: number
  /**
   * The backoff before the first retry, in milliseconds; it doubles on each retry and is jittered
   * (a random delay between half of it and all of it). `0` retries at once.
   * @default 500
   */
  minTimeoutMs?: number
  /**
   * The longest backoff between two attempts, in milliseconds.
   * @default 8000
   */
  maxTimeoutMs?: number
  /**
   * The longest wait a server's `Retry-After` (seconds or HTTP date) can ask for, in milliseconds.
   * A longer request is capped to this.
   * @default 60000
   */
  maxRetryAfterMs?: number
}

/** Options of the {@link Jamsocket} client. Accepted as the second argument or inline in the first. */
export interface JamsocketOptions {
  /**
   * The `fetch` used for every request (and handed to the handles that connect returns).
   * @default globalThis.fetch (looked up at call time, so that mocks installed later apply)
   */
  fetch?: FetchLike | undefined
  /**
   * Retry policy: `false` for none, a number for that many retries, or {@link RetryOptions}.
   * Network errors, 408, 429 and 5xx are retried; 4xx otherwise never. A `connect()` without a
   * `key` is retried only when the request provably did not reach the server (connection refused,
   * DNS failure) or on 429/503, so that it can never spawn two backends.
   * @default { retries: 2, minTimeoutMs: 500, maxTimeoutMs: 8000, maxRetryAfterMs: 60000 }
   */
  retry?: false | number | RetryOptions | undefined
  /**
   * Time limit of each attempt (request and response body), in milliseconds. Backoff between
   * attempts is not counted; bound the whole call with an `AbortSignal` (e.g. `AbortSignal.timeout()`).
   * @default 30000
   */
  timeoutMs?: number | undefined
  /**
   * Allow constructing the client in a browser-like environment. The client holds your account
   * token, so this exposes it to anyone who can open the page: only for trusted, local tools.
   * @default false
   */
  dangerouslyAllowBrowser?: boolean | undefined
}

/** Connect to the hosted Jamsocket API (or any server that speaks its v2 API). */
export interface JamsocketProdInitOptions extends JamsocketOptions {
  /** Your account name. */
  account: string
  /** An API token of the account. Kept private: never in URLs, errors, `inspect` or JSON. */
  token: string
  /** The service to spawn backends of. */
  service: string
  /**
   * The API base URL; a trailing slash is removed.
   * @default 'https://api.jamsocket.com'
   */
  apiUrl?: string | undefined
  dev?: false | undefined
}

/** Connect to a local dev server (`session-backends dev` or `npx jamsocket dev`). */
export interface JamsocketDevInitOptions extends JamsocketOptions {
  dev: true
  /**
   * The dev server's port, on `localhost`. `0` means the default, as upstream.
   * @default 8080
   */
  port?: number | undefined
}

/**
 * Connect to a Plane controller (github.com/jamsocket/plane): backends run `image` on Plane's drones.
 * The requests are Plane's own (`/ctrl/connect`, `/pub/b/{id}/status`, …); handles, the pool,
 * retries, timeouts and errors are the same as for the other targets.
 */
export interface JamsocketPlaneInitOptions extends JamsocketOptions {
  /** The controller's URL, e.g. `http://controller.internal:8080`; a trailing slash is removed. */
  plane: string
  /**
   * The image the drones run, e.g. `ghcr.io/acme/editor:1.4`. A connect's `spawn.tag` replaces its
   * tag. It is also the key's tag, so a key held by a backend of another image answers 409 `KeyHeld`.
   */
  image: string
  /**
   * The cluster to spawn in (a connect's `spawn.cluster` wins).
   * @default the controller's `--default-cluster`
   */
  cluster?: string | undefined
  /**
   * The drone pool to spawn in.
   * @default '' (the default pool)
   */
  pool?: string | undefined
  /**
   * A bearer token for a controller behind `--forward-auth`: sent to its `/ctrl` routes only, never
   * to `/pub`. Kept private: never in URLs, errors, `inspect` or JSON.
   * @default none
   */
  token?: string | undefined
  dev?: false | undefined
}

/** What `new Jamsocket()` takes: hosted credentials, `{ dev: true }`, or `{ plane, image }`. */
export type JamsocketInitOptions = JamsocketProdInitOptions | JamsocketDevInitOptions | JamsocketPlaneInitOptions

/** Per-call options of `status()` and of connect. */
export interface RequestOptions {
  /** Aborts the call (including retries and backoff); it then rejects with `signal.reason`. */
  signal?: AbortSignal | undefined
  /**
   * Time limit of each attempt, in milliseconds.
   * @default the client's `timeoutMs` (30000)
   */
  timeoutMs?: number | undefined
}

/** Per-call options of `terminate()`. */
export interface TerminateOptions extends RequestOptions {
  /**
   * `true` kills the backend at once (SIGKILL, `hard-terminating`); `false` asks it to stop
   * (SIGTERM, `terminating`).
   * @default false
   */
  hard?: boolean | undefined
}

/** The retry policy after defaults are applied. */
export interface RetryPolicy {
  readonly retries: number
  readonly minTimeoutMs: number
  readonly maxTimeoutMs: number
  readonly maxRetryAfterMs: number
}

/** Options after validation and defaults. @internal */
export interface ResolvedOptions {
  readonly fetch: FetchLike | undefined
  readonly retry: RetryPolicy
  readonly timeoutMs: number
  readonly dangerouslyAllowBrowser: boolean
}

export const DEFAULT_TIMEOUT_MS = 30_000
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  retries: 2,
  minTimeoutMs: 500,
  maxTimeoutMs: 8_000,
  maxRetryAfterMs: MAX_RETRY_AFTER_MS,
})

function checkRetries(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) {
    throw new RangeError(`retry must be false, an integer number of retries from 0 to 100, or an object; got ${describe(value)}`)
  }
  return value
}

function resolveRetry(value: JamsocketOptions['retry']): RetryPolicy {
  if (value === undefined) return DEFAULT_RETRY
  if (value === false) return { ...DEFAULT_RETRY, retries: 0 }
  if (typeof value === 'number') return { ...DEFAULT_RETRY, retries: checkRetries(value) }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`retry must be false, a number of retries, or { retries, minTimeoutMs, maxTimeoutMs, maxRetryAfterMs }; got ${describe(value)}`)
  }
  checkMs('retry.minTimeoutMs', value.minTimeoutMs)
  checkMs('retry.maxTimeoutMs', value.maxTimeoutMs)
  checkMs('retry.maxRetryAfterMs', value.maxRetryAfterMs)
  return {
    retries: value.retries === undefined ? DEFAULT_RETRY.retries : checkRetries(value.retries),
    minTimeoutMs: value.minTimeoutMs ?? DEFAULT_RETRY.minTimeoutMs,
    maxTimeoutMs: value.maxTimeoutMs ?? DEFAULT_RETRY.maxTimeoutMs,
    maxRetryAfterMs: value.maxRetryAfterMs ?? DEFAULT_RETRY.maxRetryAfterMs,
  }
}

/** Validates options and applies the defaults. Throws TypeError/RangeError with a short message. */
export function resolveOptions(options: JamsocketOptions): ResolvedOptions {
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new TypeError(`fetch must be a function, got ${describe(options.fetch)}`)
  }
  checkMs('timeoutMs', options.timeoutMs)
  if (options.dangerouslyAllowBrowser !== undefined && typeof options.dangerouslyAllowBrowser !== 'boolean') {
    throw new TypeError(`dangerouslyAllowBrowser must be a boolean, got ${describe(options.dangerouslyAllowBrowser)}`)
  }
  return {
    fetch: options.fetch,
    retry: resolveRetry(options.retry),
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    dangerouslyAllowBrowser: options.dangerouslyAllowBrowser ?? false,
  }
}

/** A short description of a bad value for an error message (never the value of a string: it may be a secret). */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
