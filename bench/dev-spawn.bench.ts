/**
 * Spawn-to-ready of the local server against starting the same minimal Node HTTP backend by hand
 * and polling it until it answers, in the same run. Through the server: `connect` + `ready_url`
 * long-poll, i.e. what `await (await jamsocket.connect()).waitUntilReady()` waits for. By hand:
 * `spawn(node backend)` on a free port, then `HEAD /` every 10 ms until it answers. Rounds
 * alternate. Goal: ≤ 1.10×. Run alone: `node --import tsx --expose-gc bench/dev-spawn.bench.ts`.
 */
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { startDevServer } from '../src/dev/index.js'

const ROUNDS = 12
const POLL_MS = 10
const GOAL = 1.1
const backend = fileURLToPath(new URL('./fixtures/dev-hello.mjs', import.meta.url))

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'HEAD', path: '/', agent: false }, (res) => {
      res.resume()
      resolve(true)
    })
    req.on('error', () => resolve(false))
    req.end()
  })
}

async function byHand(): Promise<number> {
  const start = performance.now()
  const port = await freePort()
  const child = spawn(process.execPath, [backend], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' })
  while (!(await answers(port))) await new Promise((r) => setTimeout(r, POLL_MS))
  const elapsed = performance.now() - start
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
  return elapsed
}

const dev = await startDevServer({ command: [process.execPath, backend], port: 0, proxyPort: 0, probeIntervalMs: POLL_MS })
let n = 0
async function viaServer(): Promise<number> {
  const start = performance.now()
  const response = await fetch(`${dev.apiUrl}/v2/service/-/-/connect`, { method: 'POST', body: JSON.stringify({ key: `spawn-${n++}` }) })
  const { ready_url, backend_id } = (await response.json()) as { ready_url: string; backend_id: string }
  const ready = await fetch(ready_url)
  if (ready.status !== 200) throw new Error(`ready_url answered ${ready.status}`)
  const elapsed = performance.now() - start
  await fetch(`${dev.apiUrl}/v2/backend/${backend_id}/terminate`, { method: 'POST', body: '{"hard":true}' })
  return elapsed
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
try {
  await byHand()
  await viaServer()
  const hand: number[] = []
  const server: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      hand.push(await byHand())
      server.push(await viaServer())
    } else {
      server.push(await viaServer())
      hand.push(await byHand())
    }
  }
  const h = median(hand)
  const s = median(server)
  console.log(`spawn-to-ready, median of ${ROUNDS}: by hand (spawn + HEAD / every ${POLL_MS} ms) ${h.toFixed(1)} ms, via the dev server (connect + ready_url) ${s.toFixed(1)} ms`)
  console.log(`  ratio ${(s / h).toFixed(2)}× (goal ≤ ${GOAL.toFixed(2)}×) ${s / h <= GOAL ? 'OK' : 'MISSED'}`)
} finally {
  await dev.close()
}
