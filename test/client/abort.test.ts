import { afterEach, describe, expect, it, vi } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import type { JamsocketOptions } from '../../src/client/options.js'
import { JamsocketError, TimeoutError } from '../../src/errors.js'
import { CONNECT_RESPONSE, TOKEN, hangingFetch, json, recordingFetch } from './helpers.js'

const client = (fetch: JamsocketOptions['fetch'], options: JamsocketOptions = {}) =>
  new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' }, { fetch, ...options })

afterEach(() => {
  vi.useRealTimers()
})

describe('abort: the call rejects with signal.reason', () => {
  it('before the call: no request is sent', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    const reason = new Error('user left')
    await expect(client(fetch).connect({ key: 'k' }, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    await expect(client(fetch).status('b1', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    await expect(client(fetch).terminate('b1', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(fetch.calls).toHaveLength(0)
  })

  it('during a request: the request is aborted, not retried', async () => {
    const fetch = hangingFetch()
    const controller = new AbortController()
    const result = client(fetch).connect({ key: 'k' }, { signal: controller.signal })
    await Promise.resolve()
    const reason = { why: 'a non-Error reason is kept as is' }
    controller.abort(reason)
    await expect(result).rejects.toBe(reason)
    expect(fetch.calls).toBe(1)
  })

  it('during the response body: given up at once', async () => {
    const controller = new AbortController()
    const stalled = () => {
      // Headers arrive, the body never ends.
      queueMicrotask(() => controller.abort('stop'))
      return new Response(new ReadableStream({ start() {} }), { headers: { 'content-type': 'application/json' } })
    }
    await expect(client(recordingFetch(stalled)).status('b1', { signal: controller.signal })).rejects.toBe('stop')
  })

  it('during the backoff sleep: rejects at once and clears its timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = recordingFetch(json({}, 503), json(CONNECT_RESPONSE))
    const controller = new AbortController()
    const result = client(fetch, { retry: { minTimeoutMs: 60_000 } }).connect({ key: 'k' }, { signal: controller.signal })
    result.catch(() => {})
    await vi.advanceTimersByTimeAsync(1_000)
    expect(fetch.calls).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(1) // the backoff sleep
    controller.abort(new Error('shutdown'))
    await expect(result).rejects.toThrow('shutdown')
    expect(vi.getTimerCount()).toBe(0)
    expect(fetch.calls).toHaveLength(1)
  })
})

describe('timeout and abort are different outcomes', () => {
  it('timeoutMs running out → TimeoutError (a JamsocketError carrying the limit)', async () => {
    const error = await client(hangingFetch(), { retry: false, timeoutMs: 5 })
      .status('b1')
      .catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(true)
    expect(JamsocketError.isInstance(error)).toBe(true)
    expect((error as TimeoutError).timeoutMs).toBe(5)
    expect((error as Error).message).toBe('status() timed out after 5 ms')
  })

  it('the per-call timeoutMs overrides the client default', async () => {
    const error = await client(hangingFetch(), { retry: false, timeoutMs: 60_000 })
      .connect({ key: 'k' }, { timeoutMs: 3 })
      .catch((e: unknown) => e)
    expect((error as TimeoutError).timeoutMs).toBe(3)
  })

  it('the timeout covers a stalled response body', async () => {
    const stalled = () => new Response(new ReadableStream({ start() {} }), { headers: { 'content-type': 'application/json' } })
    const error = await client(recordingFetch(stalled), { retry: false, timeoutMs: 5 })
      .connect({ key: 'k' })
      .catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(true)
  })

  it("a caller's AbortSignal.timeout is an abort: its own reason, not a TimeoutError of ours, and no retry", async () => {
    const fetch = hangingFetch()
    const error = await client(fetch, { retry: { minTimeoutMs: 0 } })
      .connect({ key: 'k' }, { signal: AbortSignal.timeout(5) })
      .catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(false)
    expect((error as DOMException).name).toBe('TimeoutError')
    expect(fetch.calls).toBe(1)
  })

  it('a finished call leaves no timer behind', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    await client(recordingFetch(json(CONNECT_RESPONSE))).connect({ key: 'k' })
    await client(recordingFetch(json({}, 404)), { retry: false }).status('b1').catch(() => {})
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('per-call options are validated', () => {
  it('a bad signal or timeoutMs is a TypeError/RangeError before any request', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await expect(client(fetch).connect({}, { signal: 'nope' as never })).rejects.toThrow(TypeError)
    await expect(client(fetch).status('b1', { timeoutMs: -1 })).rejects.toThrow(RangeError)
    await expect(client(fetch).status('b1', { timeoutMs: Number.NaN })).rejects.toThrow(RangeError)
    expect(fetch.calls).toHaveLength(0)
  })
})
