/**
 * Cancellation helpers shared by client, status and pool. No `node:*` imports.
 *
 * The caller's signal is composed with ours, never replaced, and a timeout is told apart from an
 * abort: on abort the caller gets `signal.reason`, on timeout a {@link TimeoutError}.
 */
import { TimeoutError } from './errors.js'

/** The subset of `fetch` this library uses; inject your own for tests or custom transports. */
export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>

/** A composed signal plus a way to tell whether it was our timeout that fired, and to free its timer. */
export interface Deadline {
  /** Aborts when the caller's signal aborts or the time runs out. */
  readonly signal: AbortSignal
  /** True when the timeout (not the caller) aborted {@link signal}. */
  readonly timedOut: boolean
  /** Clears the timer. Call it when the guarded work settles. */
  dispose(): void
  /** The error to surface for an abort of {@link signal}: `signal.reason`, or a TimeoutError. */
  reason(): unknown
}

/** Validates a millisecond option: a non-negative finite number no larger than setTimeout allows. */
export function checkMs(name: string, value: number | undefined): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2_147_483_647) {
    throw new RangeError(`${name} must be a number of milliseconds from 0 to 2147483647, got ${String(value)}`)
  }
}

/**
 * Composes the caller's `signal` with a timeout of `timeoutMs` (none when undefined).
 * The timer is unref'd so that it never keeps a process alive on its own.
 */
export function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined, what: string): Deadline {
  return new Limit(signal, timeoutMs, what)
}

// A class rather than an object literal with a getter: it is made once per request, on the hot path.
class Limit implements Deadline {
  readonly #controller = new AbortController()
  readonly #signal: AbortSignal | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #timedOut = false
  #onAbort: (() => void) | undefined

  constructor(signal: AbortSignal | undefined, timeoutMs: number | undefined, what: string) {
    const controller = this.#controller
    this.#signal = signal
    if (signal?.aborted) controller.abort(signal.reason)
    else if (signal) signal.addEventListener('abort', (this.#onAbort = () => controller.abort(signal.reason)), { once: true })
    if (timeoutMs !== undefined && !controller.signal.aborted) {
      this.#timer = setTimeout(() => {
        this.#timedOut = true
        controller.abort(new TimeoutError(`${what} timed out after ${timeoutMs} ms`, timeoutMs))
      }, timeoutMs)
      unref(this.#timer)
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  get timedOut(): boolean {
    return this.#timedOut
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#onAbort) this.#signal!.removeEventListener('abort', this.#onAbort)
  }

  reason(): unknown {
    return this.#controller.signal.reason
  }
}

/** Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts. Clears its timer. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Lets a timer not hold the process open (Node); a no-op where timers are numbers (browsers). */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void } | undefined)?.unref?.()
}

/** Lets go of a response body that will not be read. Never awaited: a cancel can hang on some mocked bodies. */
export function discard(response: Response): void {
  void response.body?.cancel().catch(() => {})
}
