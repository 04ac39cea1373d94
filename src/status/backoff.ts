/**
 * Reconnect timing for the status stream: exponential backoff with jitter and `Retry-After`.
 * Imports nothing from `node:*`.
 */

/** The longest `Retry-After` honoured, in milliseconds: a larger value is capped to it. */
export const MAX_RETRY_AFTER_MS = 60_000

/**
 * The delay before reconnect attempt number `failures + 1`: `base · 2^failures` capped at `max`,
 * with "equal jitter" (half fixed, half random) so that many followers of one server do not
 * reconnect in lockstep after it restarts.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/**
 * The base delay of the status stream's next reconnect. Right after a connection that delivered
 * something (`healthy`), it is the server's `retry:` if it sent one (as SSE says), else `minDelayMs`.
 * After failed attempts it is at least `minDelayMs`: a server's `retry: 0` must not turn the
 * backoff off, or a server that then fails would be asked again and again at once.
 */
export function reconnectBase(healthy: boolean, retryMs: number | undefined, minDelayMs: number, maxDelayMs: number): number {
  const base = healthy ? (retryMs ?? minDelayMs) : Math.max(retryMs ?? 0, minDelayMs)
  return Math.min(base, maxDelayMs)
}

/**
 * Reads `Retry-After` (delay-seconds or an HTTP date) as milliseconds from now; undefined when
 * absent or unreadable. Uncapped: each caller applies its own cap. (The client reads it too.)
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  const date = Date.parse(text)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
