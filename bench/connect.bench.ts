/**
 * The client's own overhead per `connect()`: `jamsocket.connect()` against a bare `fetch` +
 * `JSON.parse` of the same call (same URL shape, headers and body), both against one local
 * node:http server (a child process) answering a fixed ConnectResponse, in the same run — for the v2 route and for
 * Plane's (`POST /ctrl/connect` with Plane's body, against a bare fetch of that same request).
 * Rounds are interleaved (and their order alternated) so that drift (JIT, GC, other load on the
 * machine) hits every side alike. Goal: ≤ 1.10× for both targets.
 * Run alone: `node --import tsx --expose-gc bench/connect.bench.ts`.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Jamsocket } from '../src/client/index.js'
import { median } from './lib.js'

const ROUNDS = 10
const PER_ROUND = 500 // 5,000 calls per side in all
const WARMUP = 1_000
const GOAL = 1.1

// The API runs in a child process in a session of its own (detached), so that its work is not
// counted with the client's and it never outlives this run.
const child = fork(fileURLToPath(new URL('./fixtures/connect-api.mjs', import.meta.url)), [], {
  detached: true,
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
})
const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
const apiUrl = `http://127.0.0.1:${port}`
const token = 'bench-token-0123456789'

const jamsocket = new Jamsocket({ account: 'acme', token, service: 'editor', apiUrl })
const image = 'ghcr.io/acme/editor:1.4'
const plane = new Jamsocket({ plane: apiUrl, image, token })
const request = { key: 'doc-42' }

async function viaClient(): Promise<void> {
  await jamsocket.connect(request)
}

async function viaPlane(): Promise<void> {
  await plane.connect(request)
}

// The same Plane request written by hand: Plane's body for { key }, parsed, nothing else.
async function barePlane(): Promise<void> {
  const response = await fetch(`${apiUrl}/ctrl/connect`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ key: { name: request.key, namespace: '', tag: image }, spawn_config: { executable: { image } } }),
  })
  if (!response.ok) throw new Error(`status ${response.status}`)
  JSON.parse(await response.text())
}

// What a hand-written call does: the same request, parsed, nothing else.
async function bare(): Promise<void> {
  const response = await fetch(`${apiUrl}/v2/service/acme/editor/connect?${Math.random().toString(36).slice(2, 15)}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(request),
  })
  if (!response.ok) throw new Error(`status ${response.status}`)
  JSON.parse(await response.text())
}

// For reference: the same bare call with a 30 s timeout signal, the floor of any client that
// bounds its requests (undici's per-request signal bookkeeping is most of the client's overhead).
async function bareWithTimeout(): Promise<void> {
  const response = await fetch(`${apiUrl}/v2/service/acme/editor/connect?${Math.random().toString(36).slice(2, 15)}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(30_000),
  })
  if (!response.ok) throw new Error(`status ${response.status}`)
  JSON.parse(await response.text())
}

const now = process.hrtime.bigint
const deadline = Date.now() + 50_000
for (let i = 0; i < WARMUP; i++) {
  await viaClient()
  await bare()
  await bareWithTimeout()
  await viaPlane()
  await barePlane()
}

// Calls alternate one by one (and which side goes first alternates each round), so that drift —
// JIT, GC, other load on a shared machine — hits both sides alike.
const sides = [viaClient, bare, bareWithTimeout, viaPlane, barePlane]
const samples: number[][] = [[], [], [], [], []]
const ratios: number[] = []
const planeRatios: number[] = []
let rounds = 0
for (let r = 0; r < ROUNDS && Date.now() < deadline; r++) {
  globalThis.gc?.()
  const totals = [0, 0, 0, 0, 0]
  for (let i = 0; i < PER_ROUND; i++) {
    for (let k = 0; k < sides.length; k++) {
      const side = (i + r + k) % sides.length
      const start = now()
      await sides[side]!()
      const us = Number(now() - start) / 1e3
      samples[side]!.push(us)
      totals[side]! += us
    }
  }
  ratios.push(totals[0]! / totals[1]!)
  planeRatios.push(totals[3]! / totals[4]!)
  rounds++
}
const [clientSamples, bareSamples, timeoutSamples, planeSamples, barePlaneSamples] = samples as [number[], number[], number[], number[], number[]]
child.kill()

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0)
const calls = clientSamples.length
const clientMean = sum(clientSamples) / calls
const bareMean = sum(bareSamples) / calls
const ratio = clientMean / bareMean
const sortedRatios = [...ratios].sort((a, b) => a - b)

console.log(`connect(): ${calls} sequential calls per side after ${WARMUP} warm-up each, alternating call by call, loopback`)
console.log(`  jamsocket.connect()      mean ${clientMean.toFixed(1)} µs/call, median ${median(clientSamples).toFixed(1)} µs`)
console.log(`  bare fetch + JSON.parse  mean ${bareMean.toFixed(1)} µs/call, median ${median(bareSamples).toFixed(1)} µs (baseline)`)
const timeoutMean = sum(timeoutSamples) / calls
console.log(`  bare fetch + timeout     mean ${timeoutMean.toFixed(1)} µs/call, median ${median(timeoutSamples).toFixed(1)} µs (reference: ${(timeoutMean / bareMean).toFixed(3)}× the baseline)`)
console.log(`  overhead ${(clientMean - bareMean).toFixed(1)} µs/call`)
console.log(
  `  ratio ${ratio.toFixed(3)}× of means, ${(median(clientSamples) / median(bareSamples)).toFixed(3)}× of medians ` +
    `(rounds ${sortedRatios[0]!.toFixed(3)}–${sortedRatios.at(-1)!.toFixed(3)}×)`,
)
console.log(`  goal ≤ ${GOAL.toFixed(2)}×: ${ratio <= GOAL ? 'met' : 'NOT met'}`)

const planeMean = sum(planeSamples) / calls
const barePlaneMean = sum(barePlaneSamples) / calls
const planeRatio = median(planeRatios)
const v2Ratio = median(ratios)
const sortedPlane = [...planeRatios].sort((a, b) => a - b)
console.log(`connect() on Plane's route (POST /ctrl/connect, Plane's body), same run, interleaved with the above`)
console.log(`  plane.connect()          mean ${planeMean.toFixed(1)} µs/call, median ${median(planeSamples).toFixed(1)} µs`)
console.log(`  bare fetch + JSON.parse  mean ${barePlaneMean.toFixed(1)} µs/call, median ${median(barePlaneSamples).toFixed(1)} µs (baseline)`)
console.log(
  `  ratio ${planeRatio.toFixed(3)}× (median of ${rounds} rounds, ${sortedPlane[0]!.toFixed(3)}–${sortedPlane.at(-1)!.toFixed(3)}×) ` +
    `beside v2's ${v2Ratio.toFixed(3)}× (median of rounds)`,
)
console.log(`  goal ≤ ${GOAL.toFixed(2)}×: ${planeRatio <= GOAL ? 'met' : 'NOT met'}`)
