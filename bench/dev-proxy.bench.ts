/**
 * The local server's proxy against talking to the backend directly, same backend, same run.
 * (1) HTTP requests/s and p99 latency from a keep-alive load loop (20 requests in flight) run as a
 * child process, so that the load does not share the proxy's event loop; the order of the rounds
 * rotates so that drift hits every target alike. Two requests: `/` (13 bytes, nothing else: the
 * proxy's pure overhead) and `/doc` (the backend serialises a ~4 KB document, as a real handler
 * does some work). Goals: ≥ 0.6× direct throughput, ≤ 1.5× direct p99.
 * (2) WebSocket echo round trip (sequential, from a child process). Goal: ≤ 1.2× direct.
 * For scale, both parts also measure, in the same rounds:
 * - a bare TCP forwarder in this process (no HTTP parsing, no added headers): the floor of a proxy
 *   written on Node's sockets, on this machine;
 * - nginx (one worker, keep-alive upstream), when an `nginx` binary is on the PATH: what a native
 *   proxy does on this machine. Not a dependency: the line is left out without it.
 * Run alone: `node --import tsx --expose-gc bench/dev-proxy.bench.ts`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDevServer } from '../src/dev/index.js'

// 5 short rounds rather than 3 long ones: the medians are steadier on a shared machine.
const ROUNDS = 5
const MS = 1800
const CONNECTIONS = 20
const WS_TRIPS = 2000

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/**
 * Runs a load child in a session of its own, as every real client of the proxy is (a browser, an
 * app server, another terminal). Why: Linux's scheduler autogroups share CPU between sessions
 * first, and the local server starts each backend in a session of its own. A load child left in
 * this process's session would share one CPU share with the proxy while the backend has one to
 * itself, which handicaps only the proxied rounds.
 */
function run(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here(script), ...args], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`))))
  })
}

interface Load {
  rps: number
  p50: number
  p99: number
  errors: number
}

async function load(url: string, ms: number): Promise<Load> {
  const result = JSON.parse(await run('./fixtures/http-load.mjs', [url, String(CONNECTIONS), String(ms)])) as Load
  if (result.errors > 0) throw new Error(`${url}: ${result.errors} errors`)
  return result
}

async function wsTrip(url: string): Promise<number> {
  return (JSON.parse(await run('./fixtures/ws-client.mjs', [url, String(WS_TRIPS)])) as { mean: number }).mean
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const verdict = (ok: boolean) => (ok ? 'OK' : 'MISSED')

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** nginx as a reference proxy to `backendPort`, or undefined when there is no nginx here. */
async function startNginx(backendPort: number): Promise<{ base: string; stop: () => void } | undefined> {
  if (spawnSync('nginx', ['-v']).error !== undefined) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  const port = await freePort()
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`,
  )
  const child: ChildProcess = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { detached: true, stdio: 'ignore' })
  const stop = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  if (!(await listening(port))) {
    stop()
    return undefined
  }
  return { base: `http://127.0.0.1:${port}/`, stop }
}

let backendPort = 0
const dev = await startDevServer({
  command: [process.execPath, here('./fixtures/dev-hello.mjs')],
  port: 0,
  proxyPort: 0,
  onEvent: (event) => {
    if (event.type === 'log' && event.line.text.startsWith('port ')) backendPort = Number(event.line.text.slice(5))
  },
})

// The floor: a bare TCP forwarder to the backend (bytes in, bytes out, one socket per connection).
const forwarder = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: backendPort, noDelay: true })
  client.on('data', (chunk: Buffer) => upstream.write(chunk))
  upstream.on('data', (chunk: Buffer) => client.write(chunk))
  client.on('error', () => upstream.destroy())
  upstream.on('error', () => client.destroy())
  client.on('close', () => upstream.destroy())
  upstream.on('close', () => client.destroy())
})
await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve))
let nginx: Awaited<ReturnType<typeof startNginx>>

try {
  const connected = await fetch(`${dev.apiUrl}/v2/service/-/-/connect`, { method: 'POST', body: JSON.stringify({ key: 'bench' }) })
  const { url: proxyBase, ready_url } = (await connected.json()) as { url: string; ready_url: string }
  if ((await fetch(ready_url)).status !== 200) throw new Error('backend not ready')
  nginx = await startNginx(backendPort)
  const bases: Record<string, string> = {
    direct: `http://127.0.0.1:${backendPort}/`,
    proxied: proxyBase,
    floor: `http://127.0.0.1:${(forwarder.address() as AddressInfo).port}/`,
    ...(nginx ? { nginx: nginx.base } : {}),
  }
  const names = Object.keys(bases)
  /** `measure` for every target, ROUNDS times, the order rotating each round; the medians by target. */
  async function rounds<T>(measure: (base: string) => Promise<T>, pick: (result: T) => number[]): Promise<Record<string, number[]>> {
    const all: Record<string, T[]> = Object.fromEntries(names.map((name) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!
        all[name]!.push(await measure(bases[name]!))
      }
    }
    return Object.fromEntries(names.map((name) => [name, pick(all[name]![0]!).map((_, k) => median(all[name]!.map((r) => pick(r)[k]!)))]))
  }
  const reference = (ratio: (name: string) => string) =>
    `  (floor, bare Node TCP forwarder: ${ratio('floor')}${nginx ? `; nginx, one worker: ${ratio('nginx')}` : ''})`

  for (const [path, label] of [
    ['', '/ (13 bytes: pure proxy overhead)'],
    ['doc', '/doc (backend serialises 4 KB per request)'],
  ] as const) {
    for (const name of names) await load(bases[name] + path, 600) // warm-up: JIT, keep-alive pools
    const m = await rounds(
      (base) => load(base + path, MS),
      (l) => [l.rps, l.p99],
    )
    const [drps, dp99] = m.direct!
    const [prps, pp99] = m.proxied!
    const ratio = (name: string) => `${(m[name]![0]! / drps!).toFixed(2)}× throughput, ${(m[name]![1]! / dp99!).toFixed(2)}× p99`
    console.log(`HTTP ${label}, ${CONNECTIONS} in flight, median of ${ROUNDS} × ${MS / 1000} s`)
    console.log(`  direct:  ${drps!.toFixed(0)} req/s, p99 ${dp99!.toFixed(2)} ms`)
    console.log(`  proxied: ${prps!.toFixed(0)} req/s, p99 ${pp99!.toFixed(2)} ms`)
    console.log(reference(ratio))
    console.log(`  throughput ${(prps! / drps!).toFixed(2)}× (goal ≥ 0.60×) ${verdict(prps! / drps! >= 0.6)}; p99 ${(pp99! / dp99!).toFixed(2)}× (goal ≤ 1.50×) ${verdict(pp99! / dp99! <= 1.5)}`)
  }

  const ws = await rounds(
    (base) => wsTrip(base.replace('http', 'ws')),
    (mean) => [mean],
  )
  const wd = ws.direct![0]!
  const wp = ws.proxied![0]!
  console.log(`WebSocket echo round trip (32 bytes, mean of ${WS_TRIPS}, median of ${ROUNDS}): direct ${(wd * 1000).toFixed(0)} µs, proxied ${(wp * 1000).toFixed(0)} µs`)
  console.log(`  ratio ${(wp / wd).toFixed(2)}× (goal ≤ 1.20×) ${verdict(wp / wd <= 1.2)}`)
  console.log(reference((name) => `${(ws[name]![0]! / wd).toFixed(2)}×`))
} finally {
  nginx?.stop()
  forwarder.close()
  await dev.close()
}
