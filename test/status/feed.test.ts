import { statusFetch } from '../../src/client/node-stream.js'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  AuthenticationError,
  BackendNotFoundError,
  HTTPError,
  NetworkError,
  ProtocolError,
  RateLimitError,
  TimeoutError,
  type JamsocketError,
} from '../../src/errors.js'
import type { FetchLike } from '../../src/abort.js'
import { StatusFeed, statusStreamUrl, type FeedEvent, type StatusFeedOptions } from '../../src/status/feed.js'
import { createSseDecoder } from '../../src/status/sse.js'
import type { BackendState, BackendStatus } from '../../src/wire.js'
import { frame, startSseServer, stateOf, until, type Script, type SseServer } from '../helpers/sse-server.js'

const LIFE: BackendStatus[] = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'terminated']
const HISTORY = LIFE.map((s, i) => stateOf(s, i))
const FAST: StatusFeedOptions = { reconnect: { minDelayMs: 1, maxDelayMs: 5 }, stallTimeoutMs: 5_000 }

let servers: SseServer[] = []
let feeds: StatusFeed[] = []
afterEach(async () => {
  for (const feed of feeds) feed.close()
  await Promise.all(servers.map((s) => s.close()))
  servers = []
  feeds = []
})

async function serve(script: Script): Promise<SseServer> {
  const server = await startSseServer(script)
  servers.push(server)
  return server
}

interface Followed {
  states: BackendState[]
  errors: Array<{ error: JamsocketError; final: boolean }>
  /** Resolves at terminated or a final error. */
  done: Promise<void>
  unsubscribe: () => void
}

function follow(feed: StatusFeed, onEvent?: (event: FeedEvent) => void): Followed {
  feeds.push(feed)
  const states: BackendState[] = []
  const errors: Followed['errors'] = []
  let finish!: () => void
  const done = new Promise<void>((resolve) => (finish = resolve))
  const unsubscribe = feed.subscribe((event) => {
    if (event.type === 'status') states.push(event.state)
    else if (event.type === 'error') errors.push({ error: event.error, final: event.final })
    onEvent?.(event)
    if ((event.type === 'status' && event.state.status === 'terminated') || (event.type === 'error' && event.final)) finish()
  })
  if (feed.closed) finish()
  return { states, errors, done, unsubscribe }
}

const statuses = (states: BackendState[]) => states.map((s) => s.status)

/**
 * Lock-step pacing between a test, its server script and the feed, with no timer involved: the
 * script's `server(write)` waits for the test's `release()`, and `handled(n)` resolves once the feed
 * has handled n bytes of the body (it asked for the next chunk after them) or dropped the body.
 */
function createStep() {
  let released = 0
  let wakeServer: (() => void) | undefined
  let delivered = 0
  let handled = 0
  let wakeTest: (() => void) | undefined
  let dropped = false
  const nodeFetch = statusFetch()!
  return {
    async server(write: () => Promise<void>): Promise<void> {
      while (released === 0) await new Promise<void>((resolve) => (wakeServer = resolve))
      released--
      await write()
    },
    release(): void {
      released++
      wakeServer?.()
    },
    async handled(bytes: number): Promise<void> {
      while (handled < bytes && !dropped) await new Promise<void>((resolve) => (wakeTest = resolve))
    },
    fetch: (async (input, init) => {
      const response = await nodeFetch(input, init)
      const reader = response.body!.getReader()
      // highWaterMark 0: the feed pulls again only when it has handled what it was given.
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            handled = delivered
            wakeTest?.()
            const { done, value } = await reader.read()
            if (done) return controller.close()
            delivered += value.length
            controller.enqueue(value)
          },
          cancel: (reason) => {
            dropped = true
            wakeTest?.()
            return reader.cancel(reason)
          },
        },
        { highWaterMark: 0 },
      )
      // The transport's response is Response-like (status, headers.get, body): keep all but the body.
      return { status: response.status, ok: response.ok, headers: response.headers, body } as Response
    }) satisfies FetchLike,
  }
}

/** A Plane-like transcript: ids, keep-alive comments, mixed line endings. */
function transcript(): string {
  const endings = ['\n', '\r\n', '\r']
  let out = ': connected\n\n'
  HISTORY.forEach((state, i) => {
    const eol = endings[i % endings.length]!
    out += `data:${JSON.stringify(state)}${eol}id:${state.status}${eol}${eol}`
    if (i % 2 === 1) out += `:${eol}${eol}`
  })
  return out
}

describe('StatusFeed: reconnects', () => {
  it('a transcript cut at every byte offset, then a reconnect, gives exactly the lifecycle once', async () => {
    const bytes = new TextEncoder().encode(transcript())
    const server = await serve(async (c) => {
      const cut = Number(c.path.split('/')[3]!.slice(4))
      if (c.index === 0) {
        await c.write(bytes.slice(0, cut))
        if (cut % 2 === 0) c.end()
        else c.reset()
      } else {
        await c.write(bytes)
        c.end()
      }
    })
    for (let start = 0; start <= bytes.length; start += 24) {
      const batch = []
      for (let cut = start; cut < Math.min(start + 24, bytes.length + 1); cut++) {
        const feed = new StatusFeed(server.connectResponse(`cut-${cut}`), FAST)
        const f = follow(feed)
        batch.push(
          f.done.then(() => {
            expect(statuses(f.states), `cut at ${cut}`).toEqual(LIFE)
            expect(f.states).toEqual(HISTORY)
            expect(f.errors.filter((e) => e.final)).toEqual([])
          }),
        )
      }
      await Promise.all(batch)
    }
    // After a clean cut, the reconnect carries the id of the last event fully received.
    for (let cut = 0; cut <= bytes.length; cut += 2) {
      let lastId: string | undefined
      const d = createSseDecoder({ onMessage: () => {}, onId: (id) => (lastId = id) })
      d.push(bytes.slice(0, cut))
      const second = server.requests.find((r) => r.path === `/v2/backend/cut-${cut}/status/stream` && r.index === 1)
      if (cut === bytes.length) continue // the whole transcript: no reconnect was needed
      expect(second?.lastEventId, `cut at ${cut}`).toBe(lastId)
    }
  })

  it('survives repeated socket resets mid-event', async () => {
    const text = transcript()
    const server = await serve(async (c) => {
      if (c.index < 3) {
        await c.write(text.slice(0, 90 + c.index * 60))
        c.reset()
      } else {
        await c.write(text)
        c.end()
      }
    })
    const f = follow(new StatusFeed(server.connectResponse('resets'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(f.errors.every((e) => NetworkError.isInstance(e.error) && !e.final)).toBe(true)
    expect(server.hits('/stream')).toBe(4)
  })

  it('retries 503/500/429 with Retry-After and reports each as a non-final error', async () => {
    const server = await serve(async (c) => {
      if (c.index === 0) return c.status(503, { 'retry-after': '0' })
      if (c.index === 1) return c.status(500)
      if (c.index === 2) return c.status(429, { 'retry-after': '1' })
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('http5xx'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(f.errors.map((e) => [(e.error as HTTPError).status, e.final])).toEqual([
      [503, false],
      [500, false],
      [429, false],
    ])
    expect(RateLimitError.isInstance(f.errors[2]!.error)).toBe(true)
    expect((f.errors[0]!.error as HTTPError).retryAfterMs).toBe(0)
    expect((f.errors[2]!.error as HTTPError).retryAfterMs).toBe(1000)
  })

  it('stops on 204 without reconnecting', async () => {
    const server = await serve((c) => c.status(204))
    const feed = new StatusFeed(server.connectResponse('no-content'), FAST)
    const f = follow(feed)
    await f.done
    expect(f.errors).toHaveLength(1)
    expect((f.errors[0]!.error as HTTPError).status).toBe(204)
    expect(f.errors[0]!.final).toBe(true)
    expect([feed.active, feed.closed]).toEqual([false, true])
    expect(server.hits()).toBe(1)
  })

  it('treats 404 as an unknown backend: BackendNotFoundError, following stops', async () => {
    const server = await serve((c) => c.status(404, { 'content-type': 'application/json' }, '{"message":"Backend does not exist"}'))
    const feed = new StatusFeed(server.connectResponse('unknown'), FAST)
    let activeWhenEmitted: boolean | undefined
    const f = follow(feed, (e) => {
      if (e.type === 'error') activeWhenEmitted = feed.active
    })
    await f.done
    expect(BackendNotFoundError.isInstance(f.errors[0]?.error)).toBe(true)
    expect(f.errors[0]!.final).toBe(true)
    expect(activeWhenEmitted).toBe(false)
    expect(feed.error).toBe(f.errors[0]!.error)
    expect(server.hits()).toBe(1)
  })

  it('stops on 401 with AuthenticationError', async () => {
    const server = await serve((c) => c.status(401))
    const f = follow(new StatusFeed(server.connectResponse('auth'), FAST))
    await f.done
    expect(AuthenticationError.isInstance(f.errors[0]?.error)).toBe(true)
    expect(server.hits()).toBe(1)
  })

  it('stops with ProtocolError when the content type is not text/event-stream', async () => {
    const server = await serve((c) => c.status(200, { 'content-type': 'text/html' }, '<html>login</html>'))
    const f = follow(new StatusFeed(server.connectResponse('html'), FAST))
    await f.done
    expect(ProtocolError.isInstance(f.errors[0]?.error)).toBe(true)
    expect(f.errors[0]!.final).toBe(true)
    expect(server.hits()).toBe(1)
  })

  it('accepts text/event-stream with parameters', async () => {
    const server = await serve(async (c) => {
      c.open({ 'content-type': 'Text/Event-Stream; charset=utf-8' })
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('ct-params'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
  })

  it('reconnects a stalled stream (no byte at all) and reports a TimeoutError', async () => {
    const server = await serve(async (c) => {
      if (c.index === 0) {
        await c.write(frame(HISTORY[0]!)) // then silence
        return
      }
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('stall'), { ...FAST, stallTimeoutMs: 80 }))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(f.errors.map((e) => [TimeoutError.isInstance(e.error), e.final])).toEqual([[true, false]])
    expect(server.hits()).toBe(2)
  })

  it('a stalled connect (no response headers) is also reconnected', async () => {
    const server = await serve(async (c) => {
      if (c.index === 0) return // never answers
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('stall-connect'), { ...FAST, stallTimeoutMs: 80 }))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(TimeoutError.isInstance(f.errors[0]?.error)).toBe(true)
  })

  it('keep-alive comments keep a quiet stream alive', async () => {
    // The feed's clock is faked (its stall timer and Date.now()) and the test paces the server:
    // each comment is written, read by the feed, then the clock moves on. So the stream is quiet
    // (comments only) for 8 × 60 = 480 ms of feed time against a 100 ms stall timeout, with every
    // gap between bytes 60 ms, however late the machine's real timers are.
    const step = createStep()
    const server = await serve(async (c) => {
      await c.write(frame(HISTORY[0]!))
      for (let i = 0; i < 8; i++) await step.server(() => c.write(':\n\n'))
      await c.write(HISTORY.slice(1).map((s) => frame(s)).join(''))
      c.end()
    })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    try {
      const f = follow(new StatusFeed(server.connectResponse('keepalive'), { ...FAST, fetch: step.fetch, stallTimeoutMs: 100 }))
      let bytes = frame(HISTORY[0]!).length
      await step.handled(bytes)
      for (let i = 0; i < 8; i++) {
        vi.advanceTimersByTime(60) // quiet, but for less than the stall timeout since the last byte
        step.release() // the server writes a comment…
        await step.handled((bytes += 3)) // …and the feed has read it
        expect(f.errors).toEqual([])
      }
      vi.advanceTimersByTime(60)
      step.release()
      await f.done
      expect(f.states).toEqual(HISTORY)
      expect(f.errors).toEqual([])
      expect(server.hits()).toBe(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('gives up after maxAttempts failed attempts with a final NetworkError', async () => {
    const dead = await startSseServer(() => {})
    const response = dead.connectResponse('refused')
    await dead.close()
    const f = follow(new StatusFeed(response, { reconnect: { minDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 } }))
    await f.done
    expect(f.errors.map((e) => [NetworkError.isInstance(e.error), e.final])).toEqual([
      [true, false],
      [true, false],
      [true, true],
    ])
    // Each attempt's NetworkError has the error with the code as its cause, as a client call's has.
    expect((f.errors[0]!.error.cause as { code?: string }).code).toBe('ECONNREFUSED')
  })

  it('fails with ProtocolError on an event that never ends (bounded memory)', async () => {
    const server = await serve(async (c) => {
      for (let i = 0; i < 100 && !c.res.destroyed; i++) await c.write('data:' + 'x'.repeat(1000) + '\n')
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('endless'), { ...FAST, maxEventBytes: 10_000 }))
    await f.done
    expect(ProtocolError.isInstance(f.errors[0]?.error)).toBe(true)
    expect(f.errors[0]!.final).toBe(true)
    expect(server.hits()).toBe(1)
  })

  it('skips an unreadable event with a non-final ProtocolError and goes on', async () => {
    const server = await serve(async (c) => {
      await c.write(frame(HISTORY[0]!) + 'data:{not json\n\n' + 'data:{"status":"sleeping","time":1}\n\n')
      await c.write(HISTORY.slice(1).map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('bad-event'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(f.errors.map((e) => [ProtocolError.isInstance(e.error), e.final])).toEqual([
      [true, false],
      [true, false],
    ])
  })
})

describe('StatusFeed: replay and framing', () => {
  it('drops duplicates, out-of-order and backwards replays', async () => {
    const order = ['scheduled', 'loading', 'ready', 'loading', 'scheduled', 'ready', 'terminating', 'waiting', 'terminated']
    const server = await serve(async (c) => {
      await c.write(order.map((s) => frame(stateOf(s as BackendStatus, LIFE.indexOf(s as BackendStatus)))).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('replays'), FAST))
    await f.done
    expect(statuses(f.states)).toEqual(['scheduled', 'loading', 'ready', 'terminating', 'terminated'])
  })

  it('a server that never closes after terminated: the client closes', async () => {
    let gone: Promise<void> | undefined
    const server = await serve(async (c) => {
      gone = c.gone
      await c.write(HISTORY.map((s) => frame(s)).join('') + ':\n\n')
    })
    const feed = new StatusFeed(server.connectResponse('never-closes'), FAST)
    const f = follow(feed)
    await f.done
    await gone
    expect(f.states).toEqual(HISTORY)
    expect([feed.active, feed.closed]).toEqual([false, true])
    expect(server.hits()).toBe(1)
  })

  it('a server that closes after each event: one status per connection, exactly once each', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.slice(0, c.index + 1).map((s) => frame(s, 'dev')).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('one-each'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(server.hits()).toBe(LIFE.length)
    expect(f.errors).toEqual([])
  })

  it('sends Last-Event-ID after the server gave ids; the Plane framing resumes from it', async () => {
    const server = await serve(async (c) => {
      const from = c.lastEventId ? LIFE.indexOf(c.lastEventId as BackendStatus) + 1 : 0
      const upto = c.index === 0 ? 3 : LIFE.length
      await c.write(HISTORY.slice(from, upto).map((s) => frame(s, 'plane')).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('last-id'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(server.requests.map((r) => r.lastEventId)).toEqual([undefined, 'starting'])
    expect(server.requests[0]!.accept).toBe('text/event-stream')
  })

  it('an id sent in a block of its own (no data) comes back as Last-Event-ID on reconnect', async () => {
    const server = await serve(async (c) => {
      const from = c.lastEventId ? LIFE.indexOf(c.lastEventId as BackendStatus) + 1 : 0
      const upto = c.index === 0 ? 3 : LIFE.length
      // Events without ids, each followed by its id alone, as a server that checkpoints separately would send.
      await c.write(HISTORY.slice(from, upto).map((s) => `${frame(s, 'dev')}id: ${s.status}\n\n`).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('id-only'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(server.requests.map((r) => r.lastEventId)).toEqual([undefined, 'starting'])
  })

  it('the dev-server framing (data: without space, no id) works, without Last-Event-ID', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.slice(0, c.index === 0 ? 2 : LIFE.length).map((s) => frame(s, 'dev')).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('dev'), FAST))
    await f.done
    expect(f.states).toEqual(HISTORY)
    expect(server.requests.map((r) => r.lastEventId)).toEqual([undefined, undefined])
  })

  it('reads time as epoch milliseconds or ISO, normalised to ISO', async () => {
    const server = await serve(async (c) => {
      await c.write('data: {"status":"scheduled","time":1723731115120}\n\n')
      await c.write('data:{"status":"ready","time":"2024-08-15T14:11:57.010Z","extra":1,"termination_reason":null}\n\n')
      await c.write('data:{"status":"terminated","time":1723731600000,"exit_error":true}\n\n')
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('times'), FAST))
    await f.done
    expect(f.states).toEqual([
      { status: 'scheduled', time: '2024-08-15T14:11:55.120Z' },
      { status: 'ready', time: '2024-08-15T14:11:57.010Z' },
      { status: 'terminated', time: '2024-08-15T14:20:00.000Z', exit_error: true },
    ])
  })

  it('the reference transcripts of both framings (jamsocket-api.md §2.4) give their states', async () => {
    const dev =
      'data:{"status":"scheduled","time":"2024-08-15T14:11:55.120Z"}\n\n' +
      'data:{"status":"loading","time":"2024-08-15T14:11:55.300Z"}\n\n' +
      'data:{"status":"ready","time":"2024-08-15T14:11:57.010Z"}\n\n' +
      'data:{"status":"terminated","time":"2024-08-15T14:20:00.000Z","termination_kind":"soft","termination_reason":"external"}\n\n'
    const plane = 'data:{"status":"ready","time":1723731117010}\nid:ready\n\n:\n\n'
    const server = await serve(async (c) => {
      await c.write(c.path.includes('plane') ? plane : dev)
      if (c.path.includes('dev')) c.end()
    })
    const devFeed = follow(new StatusFeed(server.connectResponse('dev-ref'), FAST))
    await devFeed.done
    expect(statuses(devFeed.states)).toEqual(['scheduled', 'loading', 'ready', 'terminated'])
    expect(devFeed.states[3]).toEqual({
      status: 'terminated',
      time: '2024-08-15T14:20:00.000Z',
      termination_kind: 'soft',
      termination_reason: 'external',
    })
    const planeFeed = new StatusFeed(server.connectResponse('plane-ref'), FAST)
    const p = follow(planeFeed)
    await until(() => p.states.length === 1, 'the plane event')
    expect(p.states).toEqual([{ status: 'ready', time: '2024-08-15T14:11:57.010Z' }])
    expect(planeFeed.state).toEqual(p.states[0])
  })

  it('inserts /stream before the query of status_url', async () => {
    expect(statusStreamUrl('https://a.b/v2/backend/x/status')).toBe('https://a.b/v2/backend/x/status/stream')
    expect(statusStreamUrl('https://a.b/v2/backend/x/status?sig=1&e=2')).toBe('https://a.b/v2/backend/x/status/stream?sig=1&e=2')
    expect(statusStreamUrl('https://a.b/v2/backend/x/status/#frag')).toBe('https://a.b/v2/backend/x/status/stream')
    const server = await serve(async (c) => {
      await c.write(frame(stateOf('terminated')))
      c.end()
    })
    const response = server.connectResponse('query')
    const f = follow(new StatusFeed({ ...response, status_url: `${response.status_url}?sig=abc` }, FAST))
    await f.done
    expect(server.requests[0]!.url).toBe('/v2/backend/query/status/stream?sig=abc')
  })
})

describe('StatusFeed: laziness and close', () => {
  it('makes no request before the first subscriber', async () => {
    const server = await serve(async (c) => void (await c.write(frame(HISTORY[0]!))))
    const feed = new StatusFeed(server.connectResponse('lazy'), FAST)
    feeds.push(feed)
    await new Promise((r) => setTimeout(r, 20))
    expect([server.hits(), feed.active]).toEqual([0, false])
    expect(feed.state.status).toBe('scheduled')
    const f = follow(feed)
    await until(() => f.states.length === 1, 'first state')
    expect(server.hits()).toBe(1)
  })

  it('an initial status of terminated never follows', async () => {
    const server = await serve((c) => c.status(500))
    const feed = new StatusFeed(server.connectResponse('dead', 'terminated'), FAST)
    const f = follow(feed)
    await f.done
    expect([feed.closed, feed.active, server.hits()]).toEqual([true, false, 0])
  })

  it('drops replayed statuses below the connect response status (its own status is delivered once)', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const f = follow(new StatusFeed(server.connectResponse('joined', 'ready'), FAST))
    await f.done
    expect(statuses(f.states)).toEqual(['ready', 'terminating', 'terminated'])
  })

  it('pauses when the last subscriber leaves and resumes with Last-Event-ID, without duplicates', async () => {
    const gone: Array<Promise<void>> = []
    const server = await serve(async (c) => {
      gone.push(c.gone)
      const from = c.lastEventId ? LIFE.indexOf(c.lastEventId as BackendStatus) + 1 : 0
      await c.write(HISTORY.slice(0, c.index === 0 ? 2 : LIFE.length).map((s) => frame(s)).join(''))
      void from // this server replays everything: the client must drop what it has
    })
    const feed = new StatusFeed(server.connectResponse('pause'), FAST)
    const first = follow(feed)
    await until(() => first.states.length === 2, 'two states')
    first.unsubscribe()
    expect(feed.active).toBe(false)
    await gone[0]
    const second = follow(feed)
    await second.done
    expect(statuses(second.states)).toEqual(LIFE.slice(2))
    expect(server.requests[1]!.lastEventId).toBe('loading')
  })

  it('close() during connect: the request is aborted and no other is made', async () => {
    const gone: Array<Promise<void>> = []
    const server = await serve((c) => void gone.push(c.gone)) // never answers
    const feed = new StatusFeed(server.connectResponse('close-connect'), FAST)
    follow(feed)
    await until(() => server.hits() === 1, 'the request')
    feed.close()
    expect([feed.active, feed.closed]).toEqual([false, true])
    await gone[0]
    await new Promise((r) => setTimeout(r, 50))
    expect(server.hits()).toBe(1)
  })

  it('close() during backoff: no further request', async () => {
    const server = await serve((c) => c.status(503))
    const feed = new StatusFeed(server.connectResponse('close-backoff'), { reconnect: { minDelayMs: 40, maxDelayMs: 40 } })
    const f = follow(feed)
    await until(() => f.errors.length === 1, 'the first error')
    expect(feed.active).toBe(true)
    feed.close()
    await new Promise((r) => setTimeout(r, 120))
    expect(server.hits()).toBe(1)
    expect(feed.active).toBe(false)
  })

  it('close() inside a listener: no later event is delivered and no further request is made', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const feed = new StatusFeed(server.connectResponse('close-listener'), FAST)
    const seen: string[] = []
    feeds.push(feed)
    feed.subscribe((e) => {
      if (e.type === 'status') seen.push(e.state.status)
      feed.close()
    })
    await until(() => seen.length > 0, 'the first state')
    await new Promise((r) => setTimeout(r, 50))
    expect(seen).toEqual(['scheduled'])
    expect(server.hits()).toBe(1)
  })

  it('close() inside an error listener stops the reconnect', async () => {
    const server = await serve((c) => c.status(500))
    const feed = new StatusFeed(server.connectResponse('close-error'), FAST)
    feeds.push(feed)
    feed.subscribe((e) => {
      if (e.type === 'error') feed.close()
    })
    await until(() => feed.closed, 'closed')
    await new Promise((r) => setTimeout(r, 50))
    expect(server.hits()).toBe(1)
  })

  it('resumes after an id that is not ASCII, sending it back as UTF-8 (fetch and the Node transport)', async () => {
    for (const [name, fetch] of [['fetch', undefined], ['node', statusFetch()]] as const) {
      const server = await serve(async (c) => {
        if (c.index === 0) {
          await c.write(`id: étape…1\ndata: ${JSON.stringify(HISTORY[0])}\n\n`)
          return c.end()
        }
        await c.write(HISTORY.slice(1).map((s) => frame(s)).join(''))
        c.end()
      })
      const f = follow(new StatusFeed(server.connectResponse(`utf8-${name}`), { ...FAST, fetch }))
      await f.done
      expect(f.states, name).toEqual(HISTORY)
      const resumed = server.requests.find((r) => r.index === 1)!
      expect(Buffer.from(resumed.lastEventId!, 'latin1').toString('utf8'), name).toBe('étape…1')
    }
  })

  it('a throwing listener does not break following or the other listeners', async () => {
    const server = await serve(async (c) => {
      await c.write(HISTORY.map((s) => frame(s)).join(''))
      c.end()
    })
    const feed = new StatusFeed(server.connectResponse('throws'), FAST)
    const thrown: unknown[] = []
    const g = globalThis as { reportError?: (error: unknown) => void }
    g.reportError = (error) => thrown.push(error)
    try {
      feed.subscribe(() => {
        throw new Error('listener bug')
      })
      const f = follow(feed)
      await f.done
      expect(f.states).toEqual(HISTORY)
      expect(thrown).toHaveLength(LIFE.length)
    } finally {
      delete g.reportError
    }
  })

  it('validates its options', () => {
    const response = { backend_id: 'x', spawned: true, status: 'scheduled', token: 't', url: 'u', status_url: 'http://127.0.0.1:1/s', ready_url: '' } as const
    expect(() => new StatusFeed(response, { stallTimeoutMs: -1 })).toThrow(RangeError)
    expect(() => new StatusFeed(response, { reconnect: { maxAttempts: 0 } })).toThrow(RangeError)
    expect(() => new StatusFeed(response, { maxEventBytes: 1.5 })).toThrow(RangeError)
  })
})
