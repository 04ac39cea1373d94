import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BackendPool, BackendTerminatedError, HTTPError, Jamsocket, TimeoutError, type BackendHandle } from '../../src/index.js'
import { startFakeApi, type FakeApi } from './fake-api.js'

let api: FakeApi
let jamsocket: Jamsocket
let pool: BackendPool

beforeEach(async () => {
  api = await startFakeApi()
  jamsocket = new Jamsocket({ account: 'acct', service: 'svc', token: 'secret-token', apiUrl: api.apiUrl }, { retry: false })
  pool = jamsocket.pool()
})

afterEach(async () => {
  pool.close()
  await api.close()
})

/** Resolves once the handle's state has reached `status`. */
function reached(handle: BackendHandle, status: string): Promise<void> {
  return new Promise((resolve) => {
    if (handle.state.status === status) return resolve()
    const on = () => {
      if (handle.state.status !== status) return
      handle.off('status', on)
      resolve()
    }
    handle.on('status', on)
  })
}

describe('single flight', () => {
  it('concurrent connects for one key and identity make one call and each get a handle of that backend', async () => {
    const release = api.hold()
    const pending = Array.from({ length: 50 }, () => pool.connect({ key: 'doc-1' }))
    await api.received(1)
    release()
    const handles = await Promise.all(pending)
    expect(api.calls).toHaveLength(1)
    expect(new Set(handles.map((h) => h.backend_id)).size).toBe(1)
    expect(new Set(handles).size).toBe(50)
    expect(pool.stats()).toMatchObject({ calls: 1, coalesced: 49, inFlight: 0 })
  })

  it('different keys make one call each', async () => {
    const handles = await Promise.all(['a', 'b', 'c'].map((key) => pool.connect({ key })))
    expect(api.calls.map((c) => c.key).sort()).toEqual(['a', 'b', 'c'])
    expect(new Set(handles.map((h) => h.backend_id)).size).toBe(3)
  })

  it('a different user makes its own call (a token is never shared across identities) but shares the stream', async () => {
    const [ada, bob] = await Promise.all([pool.connect({ key: 'doc', user: 'ada' }), pool.connect({ key: 'doc', user: 'bob' })])
    expect(api.calls.map((c) => c.user).sort()).toEqual(['ada', 'bob'])
    expect(ada.backend_id).toBe(bob.backend_id)
    expect(ada.token).not.toBe(bob.token)
    const both = Promise.all([reached(ada, 'ready'), reached(bob, 'ready')])
    ada.on('status', () => {})
    bob.on('status', () => {})
    api.setStatus(ada.backend_id, 'ready')
    await both
    expect(api.streamsOpened()).toBe(1)
    expect(pool.stats().openStreams).toBe(1)
  })

  it('auth objects with the same content in another key order count as one identity', async () => {
    const release = api.hold()
    const first = pool.connect({ key: 'doc', auth: { role: 'editor', team: 7 } })
    const second = pool.connect({ key: 'doc', auth: { team: 7, role: 'editor' } })
    await api.received(1)
    release()
    await Promise.all([first, second])
    expect(api.calls).toHaveLength(1)
  })

  it('calls with different spawn options are not shared: spawn: false never gets a spawn, a spawning caller never gets its 409', async () => {
    const release = api.hold()
    const lookOnly = pool.connect({ key: 'doc', spawn: false })
    await api.received(1) // the server takes it first, while no backend holds the key
    const spawning = pool.connect({ key: 'doc' })
    const configured = pool.connect({ key: 'doc', spawn: { max_idle_seconds: 60 } })
    expect(pool.stats()).toMatchObject({ coalesced: 0, inFlight: 3 })
    await api.received(3)
    release()
    await expect(lookOnly).rejects.toMatchObject({ status: 409, errorCode: 'KeyUnheldNoSpawnConfig' })
    const [a, b] = await Promise.all([spawning, configured])
    expect(a.backend_id).toBe(b.backend_id)
    expect(api.calls.map((c) => c.spawn).slice(1)).toEqual(expect.arrayContaining([undefined, { max_idle_seconds: 60 }]))
  })

  it('spawn configs with the same content in another key order share one call', async () => {
    const release = api.hold()
    const first = pool.connect({ key: 'doc', spawn: { tag: 'v1', max_idle_seconds: 60 } })
    const second = pool.connect({ key: 'doc', spawn: { max_idle_seconds: 60, tag: 'v1' } })
    await api.received(1)
    release()
    await Promise.all([first, second])
    expect(api.calls).toHaveLength(1)
  })

  it('every handle of one backend shares one status stream', async () => {
    const handles = await Promise.all([pool.connect({ key: 'doc' }), pool.connect({ key: 'doc' }), pool.connect({ key: 'doc' })])
    const ready = Promise.all(handles.map((h) => reached(h, 'ready')))
    for (const h of handles) h.on('status', () => {})
    api.setStatus(handles[0]!.backend_id, 'ready')
    await ready
    expect(api.streamsOpened()).toBe(1)
  })
})

describe('ready_url', () => {
  it('pool handles wait on the one shared stream, not a ready_url long-poll per caller', async () => {
    const withReady = await startFakeApi({ readyUrl: true })
    const client = new Jamsocket({ account: 'acct', service: 'svc', token: 'secret-token', apiUrl: withReady.apiUrl }, { retry: false })
    const shared = client.pool()
    try {
      const handles = await Promise.all(Array.from({ length: 5 }, () => shared.connect({ key: 'doc' })))
      const ready = Promise.all(handles.map((h) => h.waitUntilReady()))
      await expect.poll(() => withReady.openStreams()).toBe(1)
      withReady.setStatus(handles[0]!.backend_id, 'ready')
      await ready
      expect(withReady.readyHits()).toBe(0)
      // A handle of its own (not pooled) does use the long-poll beside its stream.
      const own = await client.connect({ key: 'other' })
      const ownReady = own.waitUntilReady()
      await expect.poll(() => withReady.readyHits()).toBe(1)
      withReady.setStatus(own.backend_id, 'ready')
      await ownReady
      own.close()
    } finally {
      shared.close()
      await withReady.close()
    }
  })
})

describe('cancellation', () => {
  it("one caller's abort rejects only that caller; the shared call goes on for the others", async () => {
    const release = api.hold()
    const controller = new AbortController()
    const leaving = pool.connect({ key: 'doc' }, { signal: controller.signal })
    const staying = pool.connect({ key: 'doc' })
    await api.received(1)
    controller.abort(new Error('user left'))
    await expect(leaving).rejects.toThrow('user left')
    release()
    const handle = await staying
    expect(handle.backend_id).toBe(api.backendFor('doc'))
    expect(api.calls).toHaveLength(1)
    expect(api.calls[0]!.aborted).toBe(false)
  })

  it("one caller's timeout is a TimeoutError for that caller only", async () => {
    const release = api.hold()
    const impatient = pool.connect({ key: 'doc' }, { timeoutMs: 1 })
    const patient = pool.connect({ key: 'doc' })
    await expect(impatient).rejects.toBeInstanceOf(TimeoutError)
    release()
    await expect(patient).resolves.toMatchObject({ backend_id: 'b1' })
  })

  it('the shared call is aborted when every waiter has gone, and the next connect calls afresh', async () => {
    const release = api.hold()
    const a = new AbortController()
    const b = new AbortController()
    const first = pool.connect({ key: 'doc' }, { signal: a.signal })
    const second = pool.connect({ key: 'doc' }, { signal: b.signal })
    await api.received(1)
    a.abort()
    b.abort()
    await expect(first).rejects.toThrow()
    await expect(second).rejects.toThrow()
    await expect.poll(() => api.calls[0]!.aborted).toBe(true)
    release()
    await pool.connect({ key: 'doc' })
    expect(api.calls).toHaveLength(2)
  })

  it('an already aborted signal rejects at once with its reason', async () => {
    const reason = new Error('gone')
    await expect(pool.connect({ key: 'doc' }, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })
})

describe('failures', () => {
  it('an error reaches every waiter and is not cached: the next connect calls again', async () => {
    api.failNext(1)
    const release = api.hold()
    const both = Promise.allSettled([pool.connect({ key: 'doc' }), pool.connect({ key: 'doc' })])
    await api.received(1)
    release()
    const results = await both
    for (const r of results) expect(r.status === 'rejected' && HTTPError.isInstance(r.reason) && r.reason.status === 500).toBe(true)
    await expect(pool.connect({ key: 'doc' })).resolves.toMatchObject({ backend_id: 'b1' })
    expect(api.calls).toHaveLength(2)
  })

  it('a connect without a key rejects with a TypeError that names the fix, and makes no call', async () => {
    // @ts-expect-error the key is required
    await expect(pool.connect({})).rejects.toThrow(/needs a request with a non-empty key/)
    await expect(pool.connect({ key: 'doc' }, { timeoutMs: -1 })).rejects.toThrow(RangeError)
    expect(api.calls).toHaveLength(0)
  })

  it('connect after close() rejects', async () => {
    pool.close()
    await expect(pool.connect({ key: 'doc' })).rejects.toThrow(/closed/)
  })
})

describe('lifecycle', () => {
  it('the entry is dropped at terminated, and the next connect spawns again', async () => {
    const handle = await pool.connect({ key: 'doc' })
    const gone = reached(handle, 'terminated')
    handle.on('status', () => {})
    api.setStatus(handle.backend_id, 'terminated')
    await gone
    expect(pool.size).toBe(0)
    expect(pool.get('doc')).toBeUndefined()
    const next = await pool.connect({ key: 'doc' })
    expect(next.spawned).toBe(true)
    expect(next.backend_id).not.toBe(handle.backend_id)
  })

  it('a connect that returns a terminating backend waits for terminated and connects again', async () => {
    const old = await pool.connect({ key: 'doc' })
    api.setStatus(old.backend_id, 'terminating')
    const next = pool.connect({ key: 'doc' })
    await api.received(2)
    // The pool follows the going backend's stream until it ends.
    await expect.poll(() => api.openStreams()).toBe(1)
    api.setStatus(old.backend_id, 'terminated')
    const handle = await next
    expect(handle.backend_id).not.toBe(old.backend_id)
    expect(handle.spawned).toBe(true)
    expect(api.calls).toHaveLength(3)
  })

  it('a backend that keeps coming back terminating fails with BackendTerminatedError after maxRespawns', async () => {
    const strict = jamsocket.pool({ maxRespawns: 0 })
    const old = await strict.connect({ key: 'doc' })
    api.setStatus(old.backend_id, 'terminating')
    await expect(strict.connect({ key: 'doc' })).rejects.toBeInstanceOf(BackendTerminatedError)
    strict.close()
  })

  it('close() stops every status stream', async () => {
    const handle = await pool.connect({ key: 'doc' })
    handle.on('status', () => {})
    await expect.poll(() => api.openStreams()).toBe(1)
    pool.close()
    await expect.poll(() => api.openStreams()).toBe(0)
    expect(pool.stats().openStreams).toBe(0)
  })
})

describe('bounds and reuse', () => {
  it('close() settles what pool handles were waiting for: waitUntilReady rejects, iterations end', async () => {
    const handle = await pool.connect({ key: 'doc' })
    const iterator = handle[Symbol.asyncIterator]()
    const next = iterator.next()
    const wait = handle.waitUntilReady()
    pool.close()
    await expect(wait).rejects.toThrow(/the status feed was closed/)
    await expect(next).resolves.toEqual({ value: undefined, done: true })
  })

  it('past maxEntries the least recently used idle entry is evicted', async () => {
    const small = jamsocket.pool({ maxEntries: 2 })
    await small.connect({ key: 'a' })
    await small.connect({ key: 'b' })
    await small.connect({ key: 'a' })
    await small.connect({ key: 'c' })
    expect(small.size).toBe(2)
    expect(small.get('b')).toBeUndefined()
    expect(small.get('a')).toBeDefined()
    expect(small.stats().evictions).toBe(1)
    small.close()
  })

  it('a handle kept past its entry eviction shares one stream with new handles of that backend, followed or not', async () => {
    for (const followedBeforeEviction of [false, true]) {
      const small = jamsocket.pool({ maxEntries: 1 })
      const key = `a-${followedBeforeEviction}`
      const opened = api.streamsOpened()
      const old = await small.connect({ key })
      if (followedBeforeEviction) old.on('status', () => {})
      await small.connect({ key: `b-${followedBeforeEviction}` }) // evicts the first entry
      const fresh = await small.connect({ key })
      expect(fresh.backend_id).toBe(old.backend_id)
      const ready = Promise.all([reached(old, 'ready'), reached(fresh, 'ready')])
      old.on('status', () => {})
      fresh.on('status', () => {})
      api.setStatus(old.backend_id, 'ready')
      await ready
      expect(api.streamsOpened() - opened).toBe(1)
      expect(small.stats().openStreams).toBe(1)
      small.close()
    }
  })

  it('by default a settled connect is not reused: each caller gets a token minted for it', async () => {
    const first = await pool.connect({ key: 'doc' })
    const second = await pool.connect({ key: 'doc' })
    expect(api.calls).toHaveLength(2)
    expect(second.token).not.toBe(first.token)
    expect(pool.stats().hits).toBe(0)
  })

  it('with reuseMs a settled connect is reused without a call', async () => {
    const reusing = jamsocket.pool({ reuseMs: 60_000 })
    const first = await reusing.connect({ key: 'doc' })
    const second = await reusing.connect({ key: 'doc' })
    expect(api.calls).toHaveLength(1)
    expect(second.token).toBe(first.token)
    expect(reusing.stats().hits).toBe(1)
    reusing.close()
  })

  it('options are validated up front', () => {
    expect(() => jamsocket.pool({ maxEntries: 0 })).toThrow(RangeError)
    expect(() => jamsocket.pool({ reuseMs: -1 })).toThrow(RangeError)
  })
})
