import { describe, expect, expectTypeOf, it } from 'vitest'
import { BackendNotFoundError, BackendTerminatedError, JamsocketError, TimeoutError } from '../../src/errors.js'
import { BackendHandle, StatusFeed } from '../../src/status/index.js'
import type { BackendState, BackendStatus, ConnectResponse, TerminatedState } from '../../src/wire.js'
import { FAST, handleHarness, streamOf } from '../helpers/handle-harness.js'
import { frame, stateOf, until, type Connection, type Script } from '../helpers/sse-server.js'

const LIFE: BackendStatus[] = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'terminated']
const HISTORY = LIFE.map((s, i) => stateOf(s, i))
const { serve, follow: handleFor } = handleHarness()

describe('BackendHandle: the ConnectResponse it wraps', () => {
  const response: ConnectResponse = {
    backend_id: 'b1',
    spawned: false,
    status: 'ready',
    token: 'tok',
    url: 'https://b1.example/tok/',
    secret_token: null,
    status_url: 'https://api.example/v2/backend/b1/status',
    ready_url: '',
  }

  it('exposes every field as received, and JSON.stringify gives exactly the ConnectResponse', () => {
    const handle = new BackendHandle(response)
    expect({ ...handle }).toEqual(response)
    expect(JSON.parse(JSON.stringify(handle))).toEqual(response)
    expect(Object.keys(JSON.parse(JSON.stringify(handle))).sort()).toEqual(Object.keys(response).sort())
    const rebuilt = new BackendHandle(JSON.parse(JSON.stringify(handle)))
    expect(rebuilt.toJSON()).toEqual(response)
    expectTypeOf(handle).toMatchTypeOf<ConnectResponse>()
  })

  it('starts from the connect response status', () => {
    expect(new BackendHandle(response).state.status).toBe('ready')
  })

  it('rejects a feed of another backend', () => {
    const feed = new StatusFeed({ ...response, backend_id: 'other' })
    expect(() => new BackendHandle(response, { feed })).toThrow(TypeError)
  })
})

describe('BackendHandle: events', () => {
  it('fires each status name once and status for every one, in order; lazy until the first listener', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('events'))
    await new Promise((r) => setTimeout(r, 10))
    expect(server.hits()).toBe(0)
    const log: string[] = []
    handle.on('status', (s) => log.push(`status:${s.status}`))
    handle.on('ready', (s) => {
      expectTypeOf(s.status).toEqualTypeOf<'ready'>()
      log.push('ready')
    })
    let terminated: TerminatedState | undefined
    handle.on('terminated', (s) => (terminated = s))
    await until(() => terminated !== undefined, 'terminated')
    expect(log).toEqual([...LIFE.slice(0, 4).map((s) => `status:${s}`), 'ready', 'status:ready', 'status:terminating', 'status:terminated'])
    expect(terminated).toEqual(HISTORY[6])
    expect(handle.state).toEqual(HISTORY[6])
    expect(server.hits()).toBe(1)
  })

  it('a handler that throws is reported, and the other handlers still get that status', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('throwing-handler'))
    const thrown: unknown[] = []
    const g = globalThis as { reportError?: (error: unknown) => void }
    g.reportError = (error) => thrown.push(error)
    try {
      const log: string[] = []
      handle.on('ready', () => {
        throw new Error('handler bug')
      })
      handle.on('ready', () => log.push('second ready'))
      handle.on('status', (s) => log.push(s.status))
      await until(() => log.includes('terminated'), 'terminated')
      expect(log).toEqual([...LIFE.slice(0, 4), 'second ready', ...LIFE.slice(4)])
      expect(thrown).toEqual([new Error('handler bug')])
    } finally {
      delete g.reportError
    }
  })

  it('once() fires once; off() removes a handler (also one added with once)', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('once'))
    const onceSeen: string[] = []
    const offSeen: string[] = []
    const removed = (s: BackendState) => offSeen.push(s.status)
    handle.once('status', (s) => onceSeen.push(s.status))
    handle.once('ready', removed)
    handle.off('ready', removed)
    const all: string[] = []
    handle.on('status', (s) => all.push(s.status))
    await until(() => all.length === LIFE.length, 'all states')
    expect(onceSeen).toEqual(['scheduled'])
    expect(offSeen).toEqual([])
  })

  it('a handler added twice is called twice, and off() removes one of them; one added while a status is delivered waits for the next', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('twice'))
    const seen: string[] = []
    const twice = (s: BackendState) => seen.push(`twice:${s.status}`)
    handle.on('status', twice)
    handle.on('status', twice)
    handle.off('status', twice)
    const late = (s: BackendState) => seen.push(`late:${s.status}`)
    handle.on('status', (s) => void (s.status === 'loading' && handle.on('status', late)))
    await until(() => seen.includes('twice:terminated'), 'terminated')
    expect(seen.filter((e) => e.startsWith('twice:'))).toEqual(LIFE.map((s) => `twice:${s}`))
    expect(seen.filter((e) => e.startsWith('late:'))).toEqual(LIFE.slice(2).map((s) => `late:${s}`))
  })

  it('does not replay events to a late listener: state says where the backend is', async () => {
    const server = await serve(streamOf(HISTORY.slice(0, 5)))
    const handle = handleFor(server.connectResponse('late'))
    await handle.waitUntilReady()
    const seen: string[] = []
    handle.on('ready', (s) => seen.push(s.status))
    expect(handle.state.status).toBe('ready')
    await new Promise((r) => setTimeout(r, 20))
    expect(seen).toEqual([])
  })

  it("reports stream problems on 'error' and keeps following", async () => {
    const server = await serve(async (c) => {
      if (c.index === 0) return c.status(503, { 'retry-after': '0' })
      await c.write(HISTORY.map((s) => frame(s)).join(''))
    })
    const handle = handleFor(server.connectResponse('errors'))
    const errors: JamsocketError[] = []
    handle.on('error', (e) => errors.push(e))
    await handle.waitUntilReady()
    expect(errors.map((e) => e.name)).toEqual(['HTTPError'])
  })

  it('two handles on one shared feed use one stream; closing one leaves the other following', async () => {
    let closedA!: () => void
    const aClosed = new Promise<void>((resolve) => (closedA = resolve))
    const server = await serve(async (c) => {
      await c.write(HISTORY.slice(0, 2).map((s) => frame(s)).join(''))
      await aClosed // the rest only once a has closed
      await c.write(HISTORY.slice(2).map((s) => frame(s)).join(''))
    })
    const response = server.connectResponse('shared')
    const feed = new StatusFeed(response, FAST)
    const a = handleFor(response, { feed })
    const b = handleFor(response, { feed })
    const seenA: string[] = []
    const seenB: string[] = []
    a.on('status', (s) => seenA.push(s.status))
    b.on('status', (s) => seenB.push(s.status))
    await until(() => seenA.length >= 1, 'first state')
    a.close()
    closedA()
    expect(feed.closed).toBe(false)
    await b.waitUntilReady()
    await until(() => seenB.length === LIFE.length, 'all states on b')
    expect(seenB).toEqual(LIFE)
    expect(seenA.length).toBeLessThan(LIFE.length)
    expect(server.hits()).toBe(1)
    feed.close()
  })
})

describe('BackendHandle.waitUntilReady', () => {
  it('resolves with the handle when ready is reached', async () => {
    const server = await serve(streamOf(HISTORY.slice(0, 5)))
    const handle = handleFor(server.connectResponse('ready'))
    await expect(handle.waitUntilReady()).resolves.toBe(handle)
  })

  it('rejects with BackendTerminatedError carrying the state when the backend skips to terminated', async () => {
    const end = stateOf('terminated', 3)
    const server = await serve(streamOf([HISTORY[0]!, { ...end, termination_reason: 'startuptimeout', exit_error: true } as BackendState]))
    const handle = handleFor(server.connectResponse('skipped'))
    const error = await handle.waitUntilReady().catch((e: unknown) => e)
    expect(BackendTerminatedError.isInstance(error)).toBe(true)
    const e = error as BackendTerminatedError
    expect([e.state.status, e.reason, e.exitError, e.backendId]).toEqual(['terminated', 'startuptimeout', true, 'skipped'])
  })

  it('rejects when terminating comes first', async () => {
    const server = await serve(streamOf([HISTORY[0]!, HISTORY[5]!]))
    const handle = handleFor(server.connectResponse('terminating'))
    await expect(handle.waitUntilReady()).rejects.toMatchObject({ name: 'BackendTerminatedError', reason: 'external' })
  })

  it('rejects with TimeoutError after timeoutMs, and releases the stream', async () => {
    let gone: Promise<void> | undefined
    const server = await serve(async (c) => {
      gone = c.gone
      await c.write(frame(HISTORY[0]!))
    })
    const handle = handleFor(server.connectResponse('timeout'))
    const error = await handle.waitUntilReady({ timeoutMs: 50 }).catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(true)
    expect((error as TimeoutError).timeoutMs).toBe(50)
    await gone // nobody waits or listens any more: the connection is closed
  })

  it('rejects with signal.reason on abort', async () => {
    const server = await serve(streamOf([HISTORY[0]!]))
    const handle = handleFor(server.connectResponse('abort'))
    const controller = new AbortController()
    const waiting = handle.waitUntilReady({ signal: controller.signal })
    await until(() => server.hits() === 1, 'the request')
    const reason = new Error('user left')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    await expect(handle.waitUntilReady({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })

  it('resolves at once, without a request, when already ready', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('already', 'ready'))
    await expect(handle.waitUntilReady()).resolves.toBe(handle)
    expect(server.hits()).toBe(0)
  })

  it('rejects at once, without a request, when already terminated', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('gone', 'terminated'))
    await expect(handle.waitUntilReady()).rejects.toSatisfy((e) => BackendTerminatedError.isInstance(e))
    expect(server.hits()).toBe(0)
  })

  it('rejects with BackendNotFoundError when the stream answers 404', async () => {
    const server = await serve((c) => c.status(404))
    const handle = handleFor(server.connectResponse('unknown'))
    await expect(handle.waitUntilReady()).rejects.toSatisfy((e) => BackendNotFoundError.isInstance(e))
    // and again later, without another request
    await expect(handle.waitUntilReady()).rejects.toSatisfy((e) => BackendNotFoundError.isInstance(e))
    expect(server.hits()).toBe(1)
  })

  it('settles exactly once when ready and terminated arrive together', async () => {
    const server = await serve(streamOf([HISTORY[4]!, HISTORY[6]!]))
    const handle = handleFor(server.connectResponse('once-only'))
    const outcomes: string[] = []
    await handle.waitUntilReady().then(
      () => outcomes.push('resolved'),
      () => outcomes.push('rejected'),
    )
    await until(() => handle.state.status === 'terminated' || server.hits() === 1, 'the stream')
    expect(outcomes).toEqual(['resolved'])
  })

  it('rejects when the handle is closed while waiting', async () => {
    const server = await serve(streamOf([HISTORY[0]!]))
    const handle = handleFor(server.connectResponse('closed-while-waiting'))
    const waiting = handle.waitUntilReady()
    handle.close()
    await expect(waiting).rejects.toSatisfy((e) => JamsocketError.isInstance(e))
    await expect(handle.waitUntilReady()).rejects.toSatisfy((e) => JamsocketError.isInstance(e))
  })

  describe('ready_url long-poll', () => {
    /** The stream says only `scheduled`; ready_url answers per `ready`. */
    const withReadyUrl =
      (ready: (c: Connection) => void | Promise<void>): Script =>
      async (c) => {
        if (c.path.endsWith('/ready')) return ready(c)
        await c.write(frame(HISTORY[0]!))
      }

    it('200 with a ready state resolves, and the state becomes ready', async () => {
      const server = await serve(withReadyUrl((c) => c.status(200, { 'content-type': 'application/json' }, JSON.stringify(HISTORY[4]))))
      const handle = handleFor(server.connectResponse('ru-200', 'scheduled', true))
      const ready: string[] = []
      handle.on('ready', (s) => ready.push(s.status))
      await expect(handle.waitUntilReady()).resolves.toBe(handle)
      expect(handle.state).toEqual(HISTORY[4])
      expect(ready).toEqual(['ready'])
    })

    it('410 rejects with BackendTerminatedError carrying the state from the body, and handle.state says it too', async () => {
      const end = stateOf('terminated', 9)
      const server = await serve(withReadyUrl((c) => c.status(410, { 'content-type': 'application/json' }, JSON.stringify(end))))
      const handle = handleFor(server.connectResponse('ru-410', 'scheduled', true))
      const error = await handle.waitUntilReady().catch((e: unknown) => e)
      expect(BackendTerminatedError.isInstance(error)).toBe(true)
      expect((error as BackendTerminatedError).state).toEqual(end)
      expect(handle.state).toEqual(end)
    })

    it('202 polls again', async () => {
      const server = await serve(
        withReadyUrl((c) => {
          if (c.index < 2) return c.status(202)
          c.status(200, { 'content-type': 'application/json' }, JSON.stringify(HISTORY[4]))
        }),
      )
      const handle = handleFor(server.connectResponse('ru-202', 'scheduled', true))
      await expect(handle.waitUntilReady()).resolves.toBe(handle)
      expect(server.hits('/ready')).toBe(3)
    })

    it('an empty or null ready_url means the stream only', async () => {
      const server = await serve(streamOf(HISTORY.slice(0, 5)))
      await handleFor(server.connectResponse('ru-empty', 'scheduled', false)).waitUntilReady()
      const nulled = handleFor({ ...server.connectResponse('ru-null', 'scheduled', false), ready_url: null })
      expect(nulled.ready_url).toBeNull()
      await nulled.waitUntilReady()
      expect(server.hits('/ready')).toBe(0)
    })

    it('a failing ready_url leaves the decision to the stream', async () => {
      const server = await serve(async (c) => {
        if (c.path.endsWith('/ready')) return c.status(500)
        await c.write(HISTORY.slice(0, 5).map((s) => frame(s)).join(''))
      })
      const handle = handleFor(server.connectResponse('ru-500', 'scheduled', true))
      await expect(handle.waitUntilReady()).resolves.toBe(handle)
    })
  })
})

describe('BackendHandle: async iteration and close', () => {
  it('iterates over new states in order and ends after terminated', async () => {
    const server = await serve(streamOf(HISTORY))
    const handle = handleFor(server.connectResponse('iterate'))
    const seen: string[] = []
    for await (const state of handle) seen.push(state.status)
    expect(seen).toEqual(LIFE)
  })

  it('break releases the subscription and the stream', async () => {
    let gone: Promise<void> | undefined
    const server = await serve(async (c) => {
      gone = c.gone
      await c.write(HISTORY.slice(0, 3).map((s) => frame(s)).join(''))
    })
    const handle = handleFor(server.connectResponse('break'))
    for await (const state of handle) {
      if (state.status === 'loading') break
    }
    await gone
    expect(server.hits()).toBe(1)
  })

  it('throws the final error (e.g. 404) out of the loop', async () => {
    const server = await serve((c) => c.status(404))
    const handle = handleFor(server.connectResponse('iter-404'))
    const run = async () => {
      for await (const _ of handle) void _
    }
    await expect(run()).rejects.toSatisfy((e) => BackendNotFoundError.isInstance(e))
  })

  it('close() ends a running iteration; Symbol.dispose closes', async () => {
    const server = await serve(streamOf([HISTORY[0]!]))
    const handle = handleFor(server.connectResponse('close-iter'))
    const seen: string[] = []
    const run = (async () => {
      for await (const state of handle) {
        seen.push(state.status)
        handle[Symbol.dispose]()
      }
    })()
    await run
    expect(seen).toEqual(['scheduled'])
    expect(handle.closed).toBe(true)
  })

  it('an already terminated handle iterates nothing', async () => {
    const handle = handleFor({ ...(await serve(streamOf([]))).connectResponse('dead', 'terminated') })
    const seen: BackendState[] = []
    for await (const s of handle) seen.push(s)
    expect(seen).toEqual([])
  })

  it('close() inside a listener: no further event and no further request', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const handle = handleFor(server.connectResponse('close-in-listener'))
    const seen: string[] = []
    handle.on('status', (s) => {
      seen.push(s.status)
      handle.close()
    })
    await until(() => seen.length > 0, 'a state')
    await new Promise((r) => setTimeout(r, 50))
    expect(seen).toEqual(['scheduled'])
    expect(server.hits()).toBe(1)
  })

  it('releases the stream once nobody listens, waits or iterates', async () => {
    const gone: Array<Promise<void>> = []
    const server = await serve(async (c) => {
      gone.push(c.gone)
      await c.write(frame(HISTORY[0]!))
    })
    const handle = handleFor(server.connectResponse('release'))
    const off = handle.on('status', () => {})
    await until(() => server.hits() === 1, 'the request')
    off()
    await gone[0]
    expect(handle.closed).toBe(false)
  })
})
