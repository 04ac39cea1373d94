/**
 * What the pool saves: 10,000 concurrent `pool.connect({ key }) + waitUntilReady()` over 100 keys
 * against 10,000 plain `jamsocket.connect({ key }) + waitUntilReady()`, in the same run, against one
 * v2 API in a child process that answers connect after 20 ms and serves each backend's status
 * stream (scheduled → starting → ready, then stays open). Prints HTTP calls, status streams opened,
 * wall time and heap growth for each side, and the ratios. Rounds interleave the two sides, the
 * order alternating each round (a fresh pool each round); figures are medians, ratios the median of
 * the per-round ratios.
 * Goals: exactly 100 calls and ≤ 100 streams for the pool; ≥ 20× fewer calls and ≥ 5× less wall time.
 * Run alone: `node --import tsx --expose-gc bench/pool.bench.ts`.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Jamsocket, type BackendHandle } from '../src/index.js'
import { alternate, median } from './lib.js'

const CALLS = 10_000
const KEYS = 100
const ROUNDS = 3

interface Counts {
  connects: number
  streams: number
  /** Streams open now. */
  open: number
}

// The API runs in a child process in a session of its own (detached), so that its work is not
// counted with the client's; it exits when this run ends (its IPC channel closes).
const child = fork(fileURLToPath(new URL('./fixtures/pool-api.mjs', import.meta.url)), [], {
  detached: true,
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
})
const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
const ask = (command: string) =>
  new Promise<Counts>((resolve) => {
    child.once('message', (m: Counts) => resolve(m))
    child.send(command)
  })

const jamsocket = new Jamsocket({ account: 'acme', service: 'editor', token: 'bench-token', apiUrl: `http://127.0.0.1:${port}` })

function heap(): number {
  globalThis.gc?.()
  globalThis.gc?.()
  return process.memoryUsage().heapUsed
}

async function run(label: string, connect: (key: string) => Promise<BackendHandle>) {
  await ask('reset')
  const before = heap()
  const start = performance.now()
  const handles = await Promise.all(
    Array.from({ length: CALLS }, (_, i) => connect(`doc-${i % KEYS}`).then((h) => h.waitUntilReady({ timeoutMs: 120_000 }))),
  )
  const wallMs = performance.now() - start
  const heapBytes = heap() - before
  const counts = await ask('counts')
  for (const handle of handles) handle.close()
  // Let every stream close before the next side measures its heap from a clean start.
  for (let i = 0; i < 200 && (await ask('counts')).open > 0; i++) await new Promise((r) => setTimeout(r, 25))
  return { label, wallMs, heapBytes, connects: counts.connects, streams: counts.streams }
}

const plains: Awaited<ReturnType<typeof run>>[] = []
const pooleds: Awaited<ReturnType<typeof run>>[] = []
let stats: unknown
for (let round = 0; round < ROUNDS; round++) {
  const plainSide = () => run('plain connect', (key) => jamsocket.connect({ key }))
  const poolSide = async () => {
    const pool = jamsocket.pool()
    const result = await run('pool.connect', (key) => pool.connect({ key }))
    stats = pool.stats()
    pool.close()
    return result
  }
  const [plain, pooled] = await alternate(round, plainSide, poolSide)
  plains.push(plain)
  pooleds.push(pooled)
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`
console.log(`${ROUNDS} interleaved rounds (order alternating), medians:`)
for (const side of [plains, pooleds]) {
  const pick = (f: (r: (typeof side)[number]) => number) => median(side.map(f))
  console.log(
    `${side[0]!.label.padEnd(14)} calls ${String(pick((r) => r.connects)).padStart(6)}  streams ${String(pick((r) => r.streams)).padStart(6)}  wall ${pick((r) => r.wallMs).toFixed(0).padStart(6)} ms  heap +${mb(pick((r) => r.heapBytes))}`,
  )
}
console.log(`pool stats (last round): ${JSON.stringify(stats)}`)
const maxCalls = Math.max(...pooleds.map((r) => r.connects))
const maxStreams = Math.max(...pooleds.map((r) => r.streams))
const callRatio = median(plains.map((p, i) => p.connects / pooleds[i]!.connects))
const wallRatio = median(plains.map((p, i) => p.wallMs / pooleds[i]!.wallMs))
const heapRatio = median(plains.map((p, i) => p.heapBytes / Math.max(pooleds[i]!.heapBytes, 1)))
console.log(`calls: ${maxCalls} at most in a round (goal exactly ${KEYS}) ${pooleds.every((r) => r.connects === KEYS) ? 'ok' : 'MISSED'}`)
console.log(`streams: ${maxStreams} at most in a round (goal ≤ ${KEYS}) ${maxStreams <= KEYS ? 'ok' : 'MISSED'}`)
console.log(`fewer calls: ${callRatio.toFixed(1)}× (goal ≥ 20×) ${callRatio >= 20 ? 'ok' : 'MISSED'}`)
console.log(`less wall time: ${wallRatio.toFixed(1)}× (goal ≥ 5×) ${wallRatio >= 5 ? 'ok' : 'MISSED'}`)
console.log(`heap: ${heapRatio.toFixed(1)}× less with the pool`)
child.kill()
