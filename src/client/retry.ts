/**
 * The retry policy: what is worth another attempt, how long to wait, and the one rule that keeps a
 * keyless `connect()` from spawning twice. p-retry runs the loop; the waiting is done here so that
 * `Retry-After` is honoured and every sleep is abortable.
 */
import pRetry, { AbortError } from 'p-retry'
import { delay } from '../abort.js'
import { HTTPError, NetworkError, TimeoutError } from '../errors.js'
import { backoffDelay } from '../status/backoff.js'
import type { RetryPolicy } from './options.js'
import { errorCodes } from './request.js'

/**
 * `idempotent`: the request may be repeated (GET, terminate, a connect with a `key`).
 * `unsent-only`: repeating it after the server got it could duplicate its effect (a keyless connect
 * spawns a new backend each time), so it is retried only when it provably never arrived or the
 * server said it did not act on it (429, 503).
 */
export type RetryMode = 'idempotent' | 'unsent-only'

// Codes that mean no byte of the request reached the server: the connection was never made.
const UNSENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'])

/** True when the request provably did not reach the server (connection refused, DNS failure). */
export function provablyUnsent(error: unknown): boolean {
  return NetworkError.isInstance(error) && errorCodes(error.cause).some((code) => UNSENT_CODES.has(code))
}

/** Whether another attempt may succeed and is safe under `mode`. */
export function isRetryable(error: unknown, mode: RetryMode): boolean {
  if (mode === 'unsent-only') {
    if (HTTPError.isInstance(error)) return error.status === 429 || error.status === 503
    return provablyUnsent(error)
  }
  if (HTTPError.isInstance(error)) return error.isRetryable
  // Our per-attempt TimeoutError (a caller's abort never reaches here: it ends the loop first).
  return NetworkError.isInstance(error) || TimeoutError.isInstance(error)
}

/**
 * The wait before retry number `retry` (1-based): the server's `Retry-After` when it sent one
 * (capped at `maxRetryAfterMs`), else exponential backoff with jitter: a random delay between half
 * and all of `min(maxTimeoutMs, minTimeoutMs · 2^(retry-1))`.
 */
export function retryDelayMs(error: unknown, retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const retryAfter = HTTPError.isInstance(error) ? error.retryAfterMs : undefined
  if (retryAfter !== undefined) return Math.min(retryAfter, policy.maxRetryAfterMs)
  return backoffDelay(retry - 1, policy.minTimeoutMs, policy.maxTimeoutMs, random)
}

const always = () => true

/**
 * Runs `attempt` until it succeeds, fails for good, or `signal` aborts (then it rejects with
 * `signal.reason`, also during a backoff sleep).
 */
export function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  mode: RetryMode,
  signal: AbortSignal | undefined,
): Promise<T> {
  return pRetry(
    async (attemptNumber) => {
      try {
        return await attempt(attemptNumber)
      } catch (error) {
        // p-retry's AbortError ends the loop and rejects with the original error.
        if (!signal?.aborted && error instanceof Error && !isRetryable(error, mode)) throw new AbortError(error)
        throw error
      }
    },
    {
      // Every option is spelled out: p-retry copies the options and fills in the missing ones, and
      // filling them in costs ~6 µs per call on V8 (an object-shape transition per call), more
      // than the rest of the client's overhead.
      retries: policy.retries,
      factor: 2,
      // p-retry's own sleep is disabled (it knows no Retry-After): onFailedAttempt waits instead.
      minTimeout: 0,
      maxTimeout: 0,
      maxRetryTime: Number.POSITIVE_INFINITY,
      randomize: false,
      unref: false,
      signal,
      shouldRetry: always,
      shouldConsumeRetry: always,
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        // A caller's abort ends everything with its own reason, whatever the attempt threw.
        signal?.throwIfAborted()
        if (retriesLeft <= 0) return
        const ms = retryDelayMs(error, attemptNumber, policy)
        if (ms > 0) await delay(ms, signal)
      },
    },
  )
}
