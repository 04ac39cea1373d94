import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StatusFeed, type StatusFeedOptions } from '../../src/status/feed.js'
import { statusRank, type BackendState, type BackendStatus } from '../../src/wire.js'
import { frame, startSseServer, stateOf, type Connection, type SseServer } from '../helpers/sse-server.js'

const LIFE: BackendStatus[] = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'hard-terminating', 'terminated']
const FAST: StatusFeedOptions = { reconnect: { minDelayMs: 1, maxDelayMs: 3 }, stallTimeoutMs: 5_000 }

type Op = { kind: 'advance' } | { kind: 'replay'; pick: number } | { kind: 'comment' }
type Ending = 'end' | 'reset' | 'cut-mid-event'
interface Plan {
  history: BackendState[]
  connections: Array<{ ops: Op[]; ending: Ending }>
  chunks?: number[]
}

const plans = new Map<string, Plan>()
let server: SseServer
let nextId = 0

async function run(connection: Connection): Promise<void> {
  const id = connection.path.split('/')[3]!
  const plan = plans.get(id)!
  const progress = (plan as Plan & { progress?: number }).progress ?? 0
  const state = plan as Plan & { progress?: number }
  const script = plan.connections[connection.index]
  if (!script) {
    // The last connection: the whole history, through terminated (the server replays everything).
    await connection.write(plan.history.map((s) => frame(s)).join(''))
    connection.end()
    return
  }
  // Every connection starts with a replay of what has happened so far (as Plane does)...
  let text = plan.history
    .slice(0, progress)
    .map((s) => frame(s))
    .join('')
  // ...then duplicates, out-of-order replays, new statuses and comments, as generated.
  let p = progress
  for (const op of script.ops) {
    if (op.kind === 'advance' && p < plan.history.length - 1) text += frame(plan.history[p++]!)
    else if (op.kind === 'replay' && p > 0) text += frame(plan.history[op.pick % p]!)
    else if (op.kind === 'comment') text += ':\n\n'
  }
  state.progress = p
  if (script.ending === 'cut-mid-event') text += frame(plan.history[plan.history.length - 1]!).slice(0, 20)
  await connection.write(text)
  if (script.ending === 'end' || script.ending === 'cut-mid-event') connection.end()
  else connection.reset()
}

/** Follows one backend to the end; resolves with the states delivered. */
function followAll(id: string): Promise<BackendState[]> {
  const feed = new StatusFeed(server.connectResponse(id), FAST)
  const states: BackendState[] = []
  return new Promise((resolve, reject) => {
    feed.subscribe((event) => {
      if (event.type === 'status') {
        states.push(event.state)
        if (event.state.status === 'terminated') resolve(states)
      } else if (event.type === 'error' && event.final) reject(event.error)
    })
  })
}

beforeAll(async () => {
  server = await startSseServer(async (c) => {
    const plan = plans.get(c.path.split('/')[3]!)
    if (plan?.chunks) {
      // Chunked delivery of the whole history: one write per chunk, each flushed on its own.
      const bytes = new TextEncoder().encode(plan.history.map((s) => frame(s)).join(':\r\n\r\n'))
      const points = [0, ...plan.chunks.filter((n) => n < bytes.length).sort((a, b) => a - b), bytes.length]
      for (let i = 1; i < points.length; i++) {
        await c.write(bytes.slice(points[i - 1], points[i]))
        await new Promise((r) => setImmediate(r))
      }
      return c.end()
    }
    return run(c)
  })
})
afterAll(async () => {
  await server.close()
})

const historyArb = fc
  .subarray(LIFE.slice(0, -1))
  .map((statuses) => [...statuses, 'terminated' as const].map((s, i) => stateOf(s, i)))

describe('StatusFeed properties (real server)', () => {
  it('any chunking of the stream on the wire gives the same states', async () => {
    await fc.assert(
      fc.asyncProperty(historyArb, fc.uniqueArray(fc.integer({ min: 1, max: 700 }), { maxLength: 30 }), async (history, chunks) => {
        const id = `chunk-${nextId++}`
        plans.set(id, { history, connections: [], chunks })
        expect(await followAll(id)).toEqual(history)
      }),
      { numRuns: 40 },
    )
  })

  it('any interleaving of drops and replays gives a strictly increasing sequence ending in the true final state', async () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'advance' as const }),
      fc.record({ kind: fc.constant('replay' as const), pick: fc.nat(20) }),
      fc.constant({ kind: 'comment' as const }),
    )
    const connectionArb = fc.record({
      ops: fc.array(opArb, { maxLength: 8 }),
      ending: fc.constantFrom<Ending>('end', 'reset', 'cut-mid-event'),
    })
    await fc.assert(
      fc.asyncProperty(historyArb, fc.array(connectionArb, { maxLength: 6 }), async (history, connections) => {
        const id = `drops-${nextId++}`
        plans.set(id, { history, connections })
        const states = await followAll(id)
        const ranks = states.map((s) => statusRank(s.status))
        for (let i = 1; i < ranks.length; i++) expect(ranks[i]).toBeGreaterThan(ranks[i - 1]!)
        expect(states.at(-1)).toEqual(history.at(-1))
        // Every delivered state is exactly the server's state of that status (no torn events).
        for (const state of states) expect(history).toContainEqual(state)
      }),
      { numRuns: 60 },
    )
  })
})
