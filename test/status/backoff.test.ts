/** The status stream's reconnect timing: pure functions, no clock. */
import { describe, expect, it } from 'vitest'
import { backoffDelay, reconnectBase } from '../../src/status/backoff.js'

describe('reconnect timing', () => {
  it("a server's retry: sets the first reconnect after a good connection, as SSE says", () => {
    expect(reconnectBase(true, 2000, 500, 30_000)).toBe(2000)
    expect(reconnectBase(true, 0, 500, 30_000)).toBe(0)
    expect(reconnectBase(true, undefined, 500, 30_000)).toBe(500)
  })

  it("a server's retry: 0 does not turn the backoff off once attempts fail", () => {
    const base = reconnectBase(false, 0, 500, 30_000)
    expect(base).toBe(500)
    const ceilings = [0, 1, 2, 3].map((failures) => backoffDelay(failures, base, 30_000, () => 1))
    expect(ceilings).toEqual([500, 1000, 2000, 4000])
  })

  it('a larger retry: from the server is kept for failed attempts too, and maxDelayMs caps every base', () => {
    expect(reconnectBase(false, 5000, 500, 30_000)).toBe(5000)
    expect(reconnectBase(false, 90_000, 500, 30_000)).toBe(30_000)
    expect(reconnectBase(true, 90_000, 500, 30_000)).toBe(30_000)
  })
})
