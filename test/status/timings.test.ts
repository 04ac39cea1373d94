import { describe, expect, it } from 'vitest'
import { BackendTerminatedError, Jamsocket } from '../../src/index.js'
import { BackendHandle, StatusFeed, timingsOf } from '../../src/status/index.js'
import type { BackendState, BackendStatus, ConnectResponse } from '../../src/wire.js'
import { handleHarness, streamOf } from '../helpers/handle-harness.js'
import { frame, until, type SseServer } from '../helpers/sse-server.js'

const T0 = Date.parse('2024-08-15T14:00:00.000Z')

/** A state at `ms` after T0 (server clock), with what ending states carry. */
function at(status: BackendStatus, ms: number, reason = 'external'): BackendState {
  const time = new Date(T0 + ms).toISOString()
  if (status === 'terminating' || status === 'hard-terminating') return { status, time, termination_reason: reason } as BackendState
  if (status === 'terminated') return { status, time, termination_reason: reason, exit_error: false } as BackendState
  return { status, time }
}

// A recorded lifecycle with uneven phases (ms after the first status).
const RECORDED: BackendState[] = [
  at('scheduled', 0),
  at('loading', 40),
  at('starting', 1_240),
  at('waiting', 1_300),
  at('ready', 3_800),
  at('terminating', 63_800),
  at('terminated', 64_100),
]

const { serve, follow, track } = handleHarness()

function terminated(handle: BackendHandle): Promise<BackendState & { history: readonly BackendState[] }> {
  return new Promise((resolve) => handle.once('terminated', resolve))
}

describe('timingsOf: phases from the server timestamps', () => {
  it('gives one phase per reached status but the latest, each lasting until the next, and readyMs from the first status', () => {
    expect(timingsOf(RECORDED)).toEqual({
      readyMs: 3_800,
      phases: [
        { status: 'scheduled', ms: 40 },
        { status: 'loading', ms: 1_200 },
        { status: 'starting', ms: 60 },
        { status: 'waiting', ms: 2_500 },
        { status: 'ready', ms: 60_000 },
        { status: 'terminating', ms: 300 },
      ],
    })
  })

  it('gives nothing that was not reached: no phases for an empty or one-status history, no readyMs before ready', () => {
    expect(timingsOf([])).toEqual({ phases: [] })
    expect(timingsOf([at('scheduled', 0)])).toEqual({ phases: [] })
    expect(timingsOf(RECORDED.slice(0, 3))).toEqual({ phases: [{ status: 'scheduled', ms: 40 }, { status: 'loading', ms: 1_200 }] })
  })

  it('measures readyMs from the first status seen, also when that is not scheduled', () => {
    expect(timingsOf(RECORDED.slice(2, 5)).readyMs).toBe(2_560)
  })
})

describe('handle.history and handle.timings from a recorded stream', () => {
  it('records every status with the server time, in order, and times each phase from those times', async () => {
    const server = await serve(streamOf(RECORDED))
    const handle = follow(server.connectResponse('b1'))
    const end = await terminated(handle)
    expect(handle.history).toEqual(RECORDED)
    expect(handle.timings).toEqual(timingsOf(RECORDED))
    expect(handle.timings.readyMs).toBe(3_800)
    // A handle that was not returned by connect() has no client-clock figure.
    expect(handle.timings.requestToReadyMs).toBeUndefined()
    // The terminated event carries the history; its JSON stays the wire's state.
    expect(end.history).toEqual(RECORDED)
    expect(JSON.parse(JSON.stringify(end))).toEqual(RECORDED[6])
    expect(Object.keys(end)).not.toContain('history')
  })

  it('a handle made after the fact (connect said ready) gets the earlier statuses from the replay, without events for them', async () => {
    const server = await serve(streamOf(RECORDED))
    const handle = follow({ ...server.connectResponse('b2', 'ready'), spawned: false })
    const seen: BackendStatus[] = []
    handle.on('status', (state) => seen.push(state.status))
    await terminated(handle)
    expect(seen).toEqual(['ready', 'terminating', 'terminated'])
    expect(handle.history).toEqual(RECORDED)
    expect(handle.timings.readyMs).toBe(3_800)
    expect(handle.timings.phases.map((p) => p.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating'])
  })

  it('a stream that replays its history on every reconnect adds nothing twice', async () => {
    const server = await serve(async (c) => {
      if (!c.path.endsWith('/stream')) return c.status(404)
      // Each connection replays everything so far plus one more status, then drops.
      await c.write(RECORDED.slice(0, c.index + 2).map((s) => frame(s, 'dev')).join(''))
      c.end()
    })
    const handle = follow(server.connectResponse('b3'))
    await terminated(handle)
    expect(server.hits('/stream')).toBeGreaterThan(1)
    expect(handle.history).toEqual(RECORDED)
  })

  it('skipped statuses get no phase: their time belongs to the status before', async () => {
    const skipping = [at('scheduled', 0), at('starting', 500), at('ready', 2_000), at('terminated', 9_000)]
    const server = await serve(streamOf(skipping))
    const handle = follow(server.connectResponse('b4'))
    await terminated(handle)
    expect(handle.history.map((s) => s.status)).toEqual(['scheduled', 'starting', 'ready', 'terminated'])
    expect(handle.timings).toEqual({
      readyMs: 2_000,
      phases: [
        { status: 'scheduled', ms: 500 },
        { status: 'starting', ms: 1_500 },
        { status: 'ready', ms: 7_000 },
      ],
    })
  })

  it('a backend that never got ready: no readyMs, and BackendTerminatedError says where its time went', async () => {
    const never = [
      at('scheduled', 0),
      at('loading', 10),
      at('starting', 20),
      at('waiting', 120),
      at('hard-terminating', 300_120, 'startuptimeout'),
      at('terminated', 300_130, 'startuptimeout'),
    ]
    const server = await serve(streamOf(never))
    const handle = follow(server.connectResponse('b5'))
    const error = (await handle.waitUntilReady().catch((e: unknown) => e)) as BackendTerminatedError
    expect(BackendTerminatedError.isInstance(error)).toBe(true)
    expect(error.reason).toBe('startuptimeout')
    expect(error.history).toEqual(never.slice(0, 5))
    expect(timingsOf(error.history).phases.at(-1)).toEqual({ status: 'waiting', ms: 300_000 })
    const end = terminated(handle)
    handle.on('status', () => {})
    if (handle.state.status !== 'terminated') await end
    expect(handle.history).toEqual(never)
    expect(handle.timings.readyMs).toBeUndefined()
    expect(handle.timings.phases.map((p) => p.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'hard-terminating'])
  })

  it('a ready_url answer ahead of the stream: the replay still fills in the statuses before ready, in order', async () => {
    let handle: BackendHandle | undefined
    const server = await serve(async (c) => {
      if (c.path.endsWith('/ready')) return c.status(200, { 'content-type': 'application/json' }, JSON.stringify(RECORDED[4]))
      if (!c.path.endsWith('/stream')) return c.status(404)
      // The stream answers only once the client has taken the long-poll's answer.
      await until(() => handle?.state.status === 'ready')
      await c.write(RECORDED.slice(0, 5).map((s) => frame(s)).join(''))
    })
    handle = follow(server.connectResponse('b6', 'scheduled', true))
    handle.on('status', () => {})
    await handle.waitUntilReady()
    await until(() => handle.history.length === 5, 'the replay')
    expect(handle.history).toEqual(RECORDED.slice(0, 5))
    expect(handle.timings.readyMs).toBe(3_800)
  })

  it('a frozen terminal state offered to a feed is taken as it is', () => {
    const feed = new StatusFeed({ ...RESPONSE, status: 'ready' })
    const frozen = Object.freeze(at('terminated', 5))
    expect(feed.offer(frozen)).toBe(true)
    expect(feed.state).toBe(frozen)
    expect(feed.history).toEqual([frozen])
  })

  it('BackendTerminatedError made without a history has an empty one', () => {
    expect(new BackendTerminatedError('b', at('terminated', 0)).history).toEqual([])
  })
})

describe('requestToReadyMs: the client clock, from the connect request to seeing ready', () => {
  /** A v2 API on the script server: connect answers with `status`, the stream replays RECORDED up to ready. */
  async function api(status: BackendStatus): Promise<{ server: SseServer; jamsocket: Jamsocket }> {
    let origin = ''
    const server = await serve(async (c) => {
      if (c.path.endsWith('/connect')) {
        const body: ConnectResponse = {
          backend_id: 'b7',
          spawned: status === 'scheduled',
          status,
          token: 'tok',
          url: `${origin}/tok/`,
          status_url: `${origin}/v2/backend/b7/status`,
          ready_url: '',
        }
        return c.status(200, { 'content-type': 'application/json' }, JSON.stringify(body))
      }
      if (!c.path.endsWith('/stream')) return c.status(404)
      await c.write(RECORDED.slice(0, 5).map((s) => frame(s)).join(''))
    })
    origin = server.origin
    return { server, jamsocket: new Jamsocket({ account: 'a', service: 's', token: 't', apiUrl: origin }, { retry: false }) }
  }

  it('is given on a handle from connect() once it saw ready, apart from the server-clock readyMs', async () => {
    const { jamsocket } = await api('scheduled')
    const handle = await jamsocket.connect({ key: 'k' })
    track(handle)
    expect(handle.timings.requestToReadyMs).toBeUndefined()
    await handle.waitUntilReady()
    const timings = handle.timings
    expect(typeof timings.requestToReadyMs).toBe('number')
    expect(timings.requestToReadyMs).toBeGreaterThanOrEqual(0)
    // The server-clock figure is exactly the recorded one, whatever the client's clock did.
    expect(timings.readyMs).toBe(3_800)
  })

  it('a backend already ready in the connect answer was ready to this client when the answer came', async () => {
    const { jamsocket, server } = await api('ready')
    const handle = await jamsocket.connect({ key: 'k' })
    track(handle)
    expect(handle.timings.requestToReadyMs).toBeGreaterThanOrEqual(0)
    expect(server.hits('/stream')).toBe(0) // no following was needed for it
    expect(jamsocket.handle(handle.toJSON()).timings.requestToReadyMs).toBeUndefined()
  })

  it('rejects a requestedAt that is not a clock reading', () => {
    expect(() => new BackendHandle(RESPONSE, { requestedAt: Number.NaN })).toThrow(TypeError)
  })
})

const RESPONSE: ConnectResponse = {
  backend_id: 'x',
  spawned: true,
  status: 'scheduled',
  token: 't',
  url: 'http://127.0.0.1:1/t/',
  status_url: 'http://127.0.0.1:1/v2/backend/x/status',
  ready_url: '',
}

describe("pool.stats().timeToReady: one sample per backend, from the backends' own timestamps", () => {
  it('gives count, p50, p95 and max over the backends seen to become ready', async () => {
    const readyAfter: Record<string, number> = { a: 1_000, b: 2_000, c: 3_000, d: 9_000 }
    let origin = ''
    const server = await serve(async (c) => {
      const key = /\/v2\/backend\/([^/]+)\//.exec(c.path)?.[1]
      if (c.path.endsWith('/connect')) {
        const body = JSON.parse(await new Promise<string>((resolve) => {
          let text = ''
          c.req.on('data', (d) => (text += String(d)))
          c.req.on('end', () => resolve(text))
        })) as { key: string }
        const response: ConnectResponse = {
          backend_id: body.key,
          spawned: true,
          status: 'scheduled',
          token: `tok-${body.key}`,
          url: `${origin}/tok/`,
          status_url: `${origin}/v2/backend/${body.key}/status`,
          ready_url: '',
        }
        return c.status(200, { 'content-type': 'application/json' }, JSON.stringify(response))
      }
      if (!c.path.endsWith('/stream') || key === undefined) return c.status(404)
      await c.write([at('scheduled', 0), at('starting', 100), at('ready', readyAfter[key]!)].map((s) => frame(s)).join(''))
    })
    origin = server.origin
    const jamsocket = new Jamsocket({ account: 'a', service: 's', token: 't', apiUrl: origin }, { retry: false })
    const pool = jamsocket.pool()
    try {
      expect(pool.stats().timeToReady).toEqual({ count: 0, p50Ms: undefined, p95Ms: undefined, maxMs: undefined })
      for (const key of Object.keys(readyAfter)) {
        // Two callers of one backend: still one sample for it.
        const [first, second] = await Promise.all([pool.connect({ key }), pool.connect({ key })])
        await Promise.all([first!.waitUntilReady(), second!.waitUntilReady()])
        expect(first!.timings.requestToReadyMs).toBeGreaterThanOrEqual(0)
      }
      expect(pool.stats().timeToReady).toEqual({ count: 4, p50Ms: 2_000, p95Ms: 9_000, maxMs: 9_000 })
    } finally {
      pool.close()
    }
  })
})
