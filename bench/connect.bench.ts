/**
 * The client's own overhead per `connect()`: `jamsocket.connect()` against a bare `fetch` +
 * `JSON.parse` of the same call (same URL shape, headers and body), both against one local
 * node:http server answering a fixed ConnectResponse, in the same run. Rounds are interleaved (and
 * their order alternated) so that drift (JIT, GC, other load on the machine) hits both sides alike.
 * Goal: ≤ 1.10×. Run alone: `node --import tsx --expose-gc bench/connect.bench.ts`.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Jamsocket } from '../src/client/index.js'

const ROUNDS = 10
const PER_ROUND = 500 // 5,000 calls per side in all
const WARMUP = 1_000
const GOAL = 1.1

const body = JSON.stringify({
  backend_id: 'b1x2y3',
  spawned: true,
  status: 'scheduled',
  token: 'conn-tok-1',
  url: 'https://b1x2y3.p.jamsocket.net/conn-tok-1/',
  secret_token: 'backend-secret',
  status_url: 'https://api.jamsocket.com/v2/backend/b1x2y3/status',
  ready_url: '',
})

const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const token = 'bench-token-0123456789'

const jamsocket = new Jamsocket({ account: 'acme', token, service: 'editor', apiUrl })
const request = { key: 'doc-42' }

async function viaClient(): Promise<void> {
  await jamsocket.connect(request)
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
}

// Calls alternate one by one (and which side goes first alternates each round), so that drift —
// JIT, GC, other load on a shared machine — hits both sides alike.
const sides = [viaClient, bare, bareWithTimeout]
const samples: number[][] = [[], [], []]
const ratios: number[] = []
let rounds = 0
for (let r = 0; r < ROUNDS && Date.now() < deadline; r++) {
  globalThis.gc?.()
  const totals = [0, 0, 0]
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
  rounds++
}
const [clientSamples, bareSamples, timeoutSamples] = samples as [number[], number[], number[]]
server.closeAllConnections()
server.close()

const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
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
