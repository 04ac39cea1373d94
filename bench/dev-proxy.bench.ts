/**
 * The local server's proxy against talking to the backend directly, same backend, same run.
 * (1) HTTP requests/s and p99 latency from a keep-alive load loop (20 requests in flight) run as a
 * child process, so that the load does not share the proxy's event loop; direct and proxied rounds
 * alternate so drift hits both alike. Two requests: `/` (13 bytes, nothing else: the proxy's pure
 * overhead) and `/doc` (the backend serialises a ~4 KB document, as a real handler does some work).
 * Goals: ≥ 0.6× direct throughput, ≤ 1.5× direct p99.
 * (2) WebSocket echo round trip (sequential, from a child process). Goal: ≤ 1.2× direct.
 * For scale, both parts also measure a bare TCP forwarder (no HTTP parsing, no added headers) in
 * the same run: the floor any user-space proxy meets on this machine's loopback.
 * Run alone: `node --import tsx --expose-gc bench/dev-proxy.bench.ts`.
 */
import { execFile } from 'node:child_process'
import { connect, createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startDevServer } from '../src/dev/index.js'

const run = promisify(execFile)
// 5 short rounds rather than 3 long ones: the medians are steadier on a shared machine.
const ROUNDS = 5
const MS = 1800
const CONNECTIONS = 20
const WS_TRIPS = 2000

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

let backendPort = 0
const dev = await startDevServer({
  command: [process.execPath, here('./fixtures/dev-hello.mjs')],
  port: 0,
  proxyPort: 0,
  onEvent: (event) => {
    if (event.type === 'log' && event.line.text.startsWith('port ')) backendPort = Number(event.line.text.slice(5))
  },
})

interface Load {
  rps: number
  p50: number
  p99: number
  errors: number
}

async function load(url: string, ms: number): Promise<Load> {
  const { stdout } = await run(process.execPath, [here('./fixtures/http-load.mjs'), url, String(CONNECTIONS), String(ms)])
  const result = JSON.parse(stdout) as Load
  if (result.errors > 0) throw new Error(`${url}: ${result.errors} errors`)
  return result
}

async function wsTrip(url: string): Promise<number> {
  const { stdout } = await run(process.execPath, [here('./fixtures/ws-client.mjs'), url, String(WS_TRIPS)])
  return (JSON.parse(stdout) as { mean: number }).mean
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const verdict = (ok: boolean) => (ok ? 'OK' : 'MISSED')

// The floor: a bare TCP forwarder to the backend (bytes in, bytes out, one socket per connection).
const forwarder = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: backendPort, noDelay: true })
  client.pipe(upstream).on('error', () => client.destroy())
  upstream.pipe(client).on('error', () => upstream.destroy())
  client.on('close', () => upstream.destroy())
  upstream.on('close', () => client.destroy())
})
await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve))

try {
  const connected = await fetch(`${dev.apiUrl}/v2/service/-/-/connect`, { method: 'POST', body: JSON.stringify({ key: 'bench' }) })
  const { url: proxyBase, ready_url } = (await connected.json()) as { url: string; ready_url: string }
  if ((await fetch(ready_url)).status !== 200) throw new Error('backend not ready')
  const directBase = `http://127.0.0.1:${backendPort}/`
  const floorBase = `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}/`

  for (const [path, label] of [
    ['', '/ (13 bytes: pure proxy overhead)'],
    ['doc', '/doc (backend serialises 4 KB per request)'],
  ] as const) {
    const directUrl = directBase + path
    const proxyUrl = proxyBase + path
    const floorUrl = floorBase + path
    await load(directUrl, 700) // warm-up: JIT, keep-alive pools
    await load(proxyUrl, 700)
    await load(floorUrl, 500)
    const direct: Load[] = []
    const proxied: Load[] = []
    const floor: Load[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [directUrl, proxyUrl, floorUrl] : [proxyUrl, directUrl, floorUrl]
      for (const url of order) (url === directUrl ? direct : url === proxyUrl ? proxied : floor).push(await load(url, url === floorUrl ? MS / 2 : MS))
    }
    const d = { rps: median(direct.map((l) => l.rps)), p99: median(direct.map((l) => l.p99)) }
    const p = { rps: median(proxied.map((l) => l.rps)), p99: median(proxied.map((l) => l.p99)) }
    const f = { rps: median(floor.map((l) => l.rps)), p99: median(floor.map((l) => l.p99)) }
    console.log(`HTTP ${label}, ${CONNECTIONS} in flight, median of ${ROUNDS} × ${MS / 1000} s`)
    console.log(`  direct:  ${d.rps.toFixed(0)} req/s, p99 ${d.p99.toFixed(2)} ms`)
    console.log(`  proxied: ${p.rps.toFixed(0)} req/s, p99 ${p.p99.toFixed(2)} ms`)
    console.log(`  (floor, bare TCP forwarder: ${(f.rps / d.rps).toFixed(2)}× throughput, ${(f.p99 / d.p99).toFixed(2)}× p99)`)
    console.log(`  throughput ${(p.rps / d.rps).toFixed(2)}× (goal ≥ 0.60×) ${verdict(p.rps / d.rps >= 0.6)}; p99 ${(p.p99 / d.p99).toFixed(2)}× (goal ≤ 1.50×) ${verdict(p.p99 / d.p99 <= 1.5)}`)
  }

  const wsDirect: number[] = []
  const wsProxied: number[] = []
  const wsFloor: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    wsDirect.push(await wsTrip(directBase.replace('http', 'ws')))
    wsProxied.push(await wsTrip(proxyBase.replace('http', 'ws')))
    wsFloor.push(await wsTrip(floorBase.replace('http', 'ws')))
  }
  const wd = median(wsDirect)
  const wp = median(wsProxied)
  console.log(`WebSocket echo round trip (32 bytes, mean of ${WS_TRIPS}, median of ${ROUNDS}): direct ${(wd * 1000).toFixed(0)} µs, proxied ${(wp * 1000).toFixed(0)} µs`)
  console.log(`  ratio ${(wp / wd).toFixed(2)}× (goal ≤ 1.20×) ${verdict(wp / wd <= 1.2)}`)
  console.log(`  (floor, bare TCP forwarder: ${(median(wsFloor) / wd).toFixed(2)}×)`)
} finally {
  forwarder.close()
  await dev.close()
}
