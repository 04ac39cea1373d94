/**
 * A model test of the pool: fast-check's scheduler picks the order in which connect answers,
 * caller aborts, terminations and handle subscriptions happen, over an in-memory v2 API reached
 * through an injected fetch, and the rules are checked under every interleaving it tries.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Jamsocket, type BackendHandle } from '../../src/index.js'
import type { BackendState, ConnectResponse } from '../../src/wire.js'

type Op =
  | { kind: 'connect'; key: number; user: number; abort: boolean }
  | { kind: 'terminate'; key: number }
  | { kind: 'follow' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('connect' as const), key: fc.nat(1), user: fc.nat(1), abort: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('terminate' as const), key: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('follow' as const) }) },
)

const API = 'http://api.test'

function sse(state: BackendState): Uint8Array {
  return new TextEncoder().encode(`data:${JSON.stringify(state)}\nid:${state.status}\n\n`)
}

/** The in-memory engine: one live backend per key, a status stream per backend. */
function model(s: fc.Scheduler) {
  let seq = 0
  const live = new Map<string, string>() // key -> backend id
  const history = new Map<string, BackendState[]>()
  const streams = new Map<string, Set<ReadableStreamDefaultController<Uint8Array>>>()
  const inFlight = new Map<string, number>() // identity -> connect calls in flight
  let maxInFlight = 0
  let openStreams = 0

  const time = () => new Date().toISOString()

  const fetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input)
    const signal = init?.signal ?? undefined
    if (url.includes('/connect')) {
      const body = JSON.parse(String(init?.body)) as { key: string; user?: string }
      const identity = `${body.key}/${body.user}`
      if (signal?.aborted) throw signal.reason
      inFlight.set(identity, (inFlight.get(identity) ?? 0) + 1)
      maxInFlight = Math.max(maxInFlight, inFlight.get(identity)!)
      // The call stops being in flight the moment it is answered or the client aborts it.
      let open = true
      const finish = () => {
        if (open) inFlight.set(identity, inFlight.get(identity)! - 1)
        open = false
      }
      await new Promise<void>((resolve, reject) => {
        signal?.addEventListener('abort', () => (finish(), reject(signal.reason)), { once: true })
        s.schedule(Promise.resolve(), `answer ${identity}`).then(() => (finish(), resolve()))
      })
      let id = live.get(body.key)
      const spawned = id === undefined
      if (id === undefined) {
        id = `b${++seq}`
        live.set(body.key, id)
        history.set(id, [{ status: 'scheduled', time: time() }])
      }
      const response: ConnectResponse = {
        backend_id: id,
        spawned,
        status: history.get(id)!.at(-1)!.status,
        token: `t${seq}-${Math.random()}`,
        url: `http://proxy.test/${id}/`,
        status_url: `${API}/v2/backend/${id}/status`,
        ready_url: '',
      }
      return new Response(JSON.stringify(response), { headers: { 'content-type': 'application/json' } })
    }
    // As a real fetch: an already aborted signal rejects at once and opens nothing.
    if (signal?.aborted) throw signal.reason
    const id = /\/v2\/backend\/([^/]+)\/status\/stream/.exec(url)![1]!
    const set = streams.get(id) ?? new Set()
    streams.set(id, set)
    let ctrl!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        ctrl = c
        openStreams++
        set.add(c)
        for (const state of history.get(id)!) c.enqueue(sse(state))
      },
      cancel() {
        if (set.delete(ctrl)) openStreams--
      },
    })
    signal?.addEventListener('abort', () => {
      if (set.delete(ctrl)) openStreams--
      try {
        ctrl.error(signal.reason)
      } catch {}
    })
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
  }

  const terminate = (key: string) => {
    const id = live.get(key)
    if (id === undefined) return
    live.delete(key)
    const state: BackendState = { status: 'terminated', time: time(), termination_reason: 'external' }
    history.get(id)!.push(state)
    for (const c of streams.get(id) ?? []) c.enqueue(sse(state))
  }

  return { fetch, terminate, maxInFlight: () => maxInFlight, openStreams: () => openStreams }
}

/**
 * Runs scheduled tasks until none is left, letting I/O callbacks and timers run between rounds,
 * since answering one task can schedule another (a respawn after a termination).
 */
async function drain(s: fc.Scheduler): Promise<void> {
  for (let idle = 0, round = 0; idle < 3 && round < 200; round++) {
    await s.waitAll()
    // A timer turn, not just an immediate: a stream that saw `terminated` closes one timer turn later.
    await new Promise((resolve) => setTimeout(resolve, 0))
    idle = s.count() === 0 ? idle + 1 : 0
  }
}

describe('pool model (fc.scheduler over connect, abort, answer, terminate, follow, close)', () => {
  it('keeps its rules under every interleaving', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(opArb, { minLength: 1, maxLength: 12 }), async (s, ops) => {
        const engine = model(s)
        const jamsocket = new Jamsocket({ account: 'a', service: 's', token: 'secret', apiUrl: API }, { fetch: engine.fetch, retry: false })
        const pool = jamsocket.pool({ maxRespawns: 10 })
        const seenTerminated = new Set<string>()
        const handedOut: BackendHandle[] = []
        const violations: string[] = []
        const settled: boolean[] = []

        const watch = (handle: BackendHandle) =>
          handle.on('terminated', () => {
            seenTerminated.add(handle.backend_id)
          })

        for (const op of ops) {
          void s.schedule(Promise.resolve(), op.kind).then(() => {
            if (op.kind === 'terminate') return engine.terminate(`k${op.key}`)
            if (op.kind === 'follow') {
              for (const h of handedOut) watch(h)
              return
            }
            const controller = new AbortController()
            const index = settled.push(false) - 1
            pool
              .connect({ key: `k${op.key}`, user: `u${op.user}` }, { signal: controller.signal })
              .then(
                (handle) => {
                  // Rule: no handle of a backend whose termination was seen is handed out.
                  if (seenTerminated.has(handle.backend_id)) violations.push(`handed out terminated ${handle.backend_id}`)
                  handedOut.push(handle)
                },
                () => {},
              )
              .finally(() => (settled[index] = true))
            if (op.abort) void s.schedule(Promise.resolve(), 'abort').then(() => controller.abort())
          })
        }
        await drain(s)
        pool.close()
        await drain(s)

        expect(violations).toEqual([])
        // Rule: at most one connect call in flight per identity.
        expect(engine.maxInFlight()).toBeLessThanOrEqual(1)
        // Rule: every promise settles.
        expect(settled.every(Boolean)).toBe(true)
        // Rule: nothing is left following after close().
        expect(engine.openStreams()).toBe(0)
        expect(pool.stats()).toMatchObject({ inFlight: 0, openStreams: 0 })
      }),
      { numRuns: Number(process.env.MODEL_RUNS ?? 300) },
    )
  })
})
