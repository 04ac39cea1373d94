import { afterEach, describe, expect, it, vi } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { DEFAULT_RETRY, type JamsocketOptions } from '../../src/client/options.js'
import { isRetryable, retryDelayMs } from '../../src/client/retry.js'
import { HTTPError, NetworkError, RateLimitError, TimeoutError } from '../../src/errors.js'
import { CONNECT_RESPONSE, TOKEN, hangingFetch, json, networkFailure, recordingFetch } from './helpers.js'

// Backoff of 0 ms keeps these tests instant without touching timers.
const client = (fetch: JamsocketOptions['fetch'], retry: JamsocketOptions['retry'] = { minTimeoutMs: 0 }, timeoutMs?: number) =>
  new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' }, { fetch, retry, timeoutMs })

const ok = () => json(CONNECT_RESPONSE)
const status = (code: number, headers: Record<string, string> = {}) => json({ error: { code: 'x', message: 'm' } }, code, headers)

afterEach(() => {
  vi.useRealTimers()
})

describe('retried: network errors, 408, 429, 5xx', () => {
  it('503, 503, 200 → 3 calls and success (keyed connect)', async () => {
    const fetch = recordingFetch(status(503), status(503), ok())
    await expect(client(fetch).connect({ key: 'k' })).resolves.toMatchObject({ backend_id: 'b1x2y3' })
    expect(fetch.calls).toHaveLength(3)
  })

  for (const code of [408, 429, 500, 502, 504]) {
    it(`${code} then 200 → 2 calls (status())`, async () => {
      const fetch = recordingFetch(status(code), json({ status: 'ready', time: 1 }))
      await expect(client(fetch).status('b1')).resolves.toMatchObject({ status: 'ready' })
      expect(fetch.calls).toHaveLength(2)
    })
  }

  it('a network error then 200 → 2 calls (terminate() is idempotent)', async () => {
    const fetch = recordingFetch(networkFailure('ECONNRESET'), json({ status: 'ok' }))
    await expect(client(fetch).terminate('b1')).resolves.toEqual({ status: 'ok' })
    expect(fetch.calls).toHaveLength(2)
  })

  it('default is 2 retries: 3 attempts, then the last error', async () => {
    const fetch = recordingFetch(status(503))
    const error = await client(fetch).connect({ key: 'k' }).catch((e: unknown) => e)
    expect(fetch.calls).toHaveLength(3)
    expect(HTTPError.isInstance(error) && error.status).toBe(503)
  })

  it('retry: n allows n retries; retry: false none', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const five = recordingFetch(status(500))
    const result = client(five, 5).status('b1').catch(() => {})
    await vi.advanceTimersByTimeAsync(60_000)
    await result
    expect(five.calls).toHaveLength(6)
    const none = recordingFetch(status(500))
    await client(none, false).status('b1').catch(() => {})
    expect(none.calls).toHaveLength(1)
  })

  it('each attempt gets a fresh timeout: a keyed connect that times out is retried, then rejects with TimeoutError', async () => {
    const fetch = hangingFetch()
    const error = await client(fetch, { minTimeoutMs: 0 }, 1).connect({ key: 'k' }).catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(true)
    expect(fetch.calls).toBe(3)
  })
})

describe('never retried: 400, 401, 403, 404, 409, 422, 3xx, ProtocolError', () => {
  for (const code of [400, 401, 403, 404, 409, 422]) {
    it(`${code} → 1 call`, async () => {
      const fetch = recordingFetch(status(code), ok())
      await expect(client(fetch).connect({ key: 'k' })).rejects.toMatchObject({ status: code })
      expect(fetch.calls).toHaveLength(1)
    })
  }

  it('a malformed 2xx body → 1 call', async () => {
    const fetch = recordingFetch(new Response('nope', { headers: { 'content-type': 'application/json' } }), ok())
    await expect(client(fetch).connect({ key: 'k' })).rejects.toMatchObject({ name: 'ProtocolError' })
    expect(fetch.calls).toHaveLength(1)
  })
})

describe('a connect without a key is retried only when it provably did not reach the server, or on 429/503', () => {
  for (const code of [500, 502, 504, 408]) {
    it(`${code} → 1 call (the server may have spawned a backend)`, async () => {
      const fetch = recordingFetch(status(code), ok())
      await expect(client(fetch).connect()).rejects.toMatchObject({ status: code })
      expect(fetch.calls).toHaveLength(1)
    })
  }

  for (const code of [429, 503]) {
    it(`${code} → retried (the server did not act on it)`, async () => {
      const fetch = recordingFetch(status(code), ok())
      await expect(client(fetch).connect()).resolves.toMatchObject({ backend_id: 'b1x2y3' })
      expect(fetch.calls).toHaveLength(2)
    })
  }

  for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']) {
    it(`${code} → retried (the request never left)`, async () => {
      const fetch = recordingFetch(networkFailure(code), ok())
      await expect(client(fetch).connect({ spawn: { tag: 'x' } })).resolves.toMatchObject({ backend_id: 'b1x2y3' })
      expect(fetch.calls).toHaveLength(2)
    })
  }

  it('ECONNREFUSED inside an AggregateError (happy eyeballs) counts too', () => {
    const aggregate = Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], 'all failed'))
    const error = new NetworkError('connect() could not reach x', { cause: new TypeError('fetch failed', { cause: aggregate }) })
    expect(isRetryable(error, 'unsent-only')).toBe(true)
  })

  it('ECONNRESET → 1 call (it may have arrived)', async () => {
    const fetch = recordingFetch(networkFailure('ECONNRESET'), ok())
    await expect(client(fetch).connect()).rejects.toMatchObject({ name: 'NetworkError' })
    expect(fetch.calls).toHaveLength(1)
  })

  it('a timeout → 1 call', async () => {
    const fetch = hangingFetch()
    await expect(client(fetch, { minTimeoutMs: 0 }, 1).connect()).rejects.toMatchObject({ name: 'TimeoutError' })
    expect(fetch.calls).toBe(1)
  })
})

describe('backoff and Retry-After', () => {
  it('backoff is exponential with jitter between half and all of min(max, min·2^(n-1))', () => {
    const policy = DEFAULT_RETRY
    const error = new HTTPError({ status: 503, operation: 'x' })
    expect(retryDelayMs(error, 1, policy, () => 0)).toBe(250)
    expect(retryDelayMs(error, 1, policy, () => 1)).toBe(500)
    expect(retryDelayMs(error, 3, policy, () => 1)).toBe(2000)
    expect(retryDelayMs(error, 10, policy, () => 1)).toBe(8000)
    expect(retryDelayMs(error, 10, policy, () => 0)).toBe(4000)
  })

  it('Retry-After wins over backoff and is capped at maxRetryAfterMs', () => {
    const policy = { ...DEFAULT_RETRY, maxRetryAfterMs: 10_000 }
    expect(retryDelayMs(new RateLimitError({ status: 429, operation: 'x', retryAfterMs: 0 }), 3, policy)).toBe(0)
    expect(retryDelayMs(new RateLimitError({ status: 429, operation: 'x', retryAfterMs: 3000 }), 1, policy)).toBe(3000)
    expect(retryDelayMs(new RateLimitError({ status: 429, operation: 'x', retryAfterMs: 3_600_000 }), 1, policy)).toBe(10_000)
  })

  it('429 with Retry-After: 2 (seconds) → the retry waits exactly 2 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = recordingFetch(status(429, { 'retry-after': '2' }), ok())
    const result = client(fetch, {}).connect({ key: 'k' })
    await vi.advanceTimersByTimeAsync(1_999)
    expect(fetch.calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(fetch.calls).toHaveLength(2)
    await expect(result).resolves.toMatchObject({ backend_id: 'b1x2y3' })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('503 with Retry-After as an HTTP date → waits until then', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    // HTTP dates have whole seconds: the wait is between 4 and 5 s.
    const when = new Date(Date.now() + 5_000).toUTCString()
    const fetch = recordingFetch(status(503, { 'retry-after': when }), json({ status: 'ok' }))
    const result = client(fetch, {}).terminate('b1')
    await vi.advanceTimersByTimeAsync(3_900)
    expect(fetch.calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1_100)
    expect(fetch.calls).toHaveLength(2)
    await expect(result).resolves.toEqual({ status: 'ok' })
  })

  it('a Retry-After above maxRetryAfterMs is capped', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = recordingFetch(status(429, { 'retry-after': '3600' }), ok())
    const result = client(fetch, { maxRetryAfterMs: 1_000 }).connect({ key: 'k' })
    await vi.advanceTimersByTimeAsync(999)
    expect(fetch.calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(fetch.calls).toHaveLength(2)
    await expect(result).resolves.toMatchObject({ backend_id: 'b1x2y3' })
  })

  it('without Retry-After the default backoff waits at least 250 ms and at most 500 ms before retry 1', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const fetch = recordingFetch(status(503), ok())
    const result = client(fetch, {}).connect({ key: 'k' })
    await vi.advanceTimersByTimeAsync(249)
    expect(fetch.calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(251)
    expect(fetch.calls).toHaveLength(2)
    await expect(result).resolves.toBeDefined()
  })
})
