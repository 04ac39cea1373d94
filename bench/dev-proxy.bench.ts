/**
 * The local server's proxy against other proxies in front of the same backend, same run:
 * - `http-proxy` (the most used Node reverse proxy; keep-alive upstream, X-Forwarded-* added): the
 *   baseline of the goals;
 * - the floor of our design (fixtures/proxy-floor.mjs: the same node:http server and undici Pool,
 *   relaying and nothing else), so that each run shows what our features cost on top of it;
 * - a bare Node TCP forwarder (bytes in, bytes out: the floor of any proxy written on Node's sockets);
 * - nginx with one worker (a native proxy), when an `nginx` binary is found; left out without it.
 * Every subject (and the load generator) runs in a session of its own, as real clients and servers
 * do: Linux shares CPU between sessions first. Rounds interleave the subjects, the order rotating
 * each round; figures are medians, ratios the median of the per-round ratios.
 * (1) CPU per proxied request: the subject's CPU time (all its processes and threads, from the
 *     scheduler's per-thread run time in /proc)
 *     over a keep-alive load of 32 requests in flight, divided by the requests answered. On two
 *     cores, throughput against talking to the backend directly is set by the load generator and
 *     the backend sharing the CPU; CPU per request is what tells proxies apart. Goal: ≤ 0.70× http-proxy.
 *     The same at a fixed 3,000 requests per second (fixtures/http-rate.mjs): below saturation every
 *     subject gets the same requests at the same times, so the figure does not depend on batching.
 * (2) Throughput and p99 latency of the saturating loads. Goals: ≥ 1.00× and ≤ 1.00× http-proxy.
 * (3) WebSocket echo round trip (sequential, one client interleaving its trips to every subject trip by
 *     trip, so that all see the same machine load). Goal: ≤ 1.10× the bare forwarder.
 * Run alone: `node --import tsx --expose-gc bench/dev-proxy.bench.ts`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, median } from './lib.js'

const ROUNDS = 9
const MS = 1800
const CONNECTIONS = 32
const WS_TRIPS = 2000
/** The fixed rate of the below-saturation CPU measurement, and how long each subject gets it per round. */
const RATE = 3000
const RATE_MS = 2000
const GOALS = { cpu: 0.7, rps: 1.0, p99: 1.0, ws: 1.1 }

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** Runs a script to completion in a session of its own; resolves with its stdout. */
function run(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [here(script), ...args], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited with ${code}`))))
  })
}

/** A long-running subject in a session (and process group) of its own. */
interface Subject {
  base: string
  group: number
  stop: () => void
}

/** Starts `command` detached; resolves with the first JSON line it prints. */
function startSubject(command: string, args: string[]): Promise<{ child: ChildProcess; info: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text
      const line = out.indexOf('\n')
      if (line !== -1) resolve({ child, info: JSON.parse(out.slice(0, line)) as Record<string, unknown> })
    })
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

const stopGroup = (group: number) => () => {
  try {
    process.kill(-group, 'SIGTERM')
  } catch {
    // already gone
  }
}

/**
 * CPU time (µs) used so far by every process of a process group: every thread's run time from the
 * scheduler (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds), not `stat`'s 10 ms ticks.
 */
function groupCpuUs(group: number): number {
  let ns = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Fields after the command name (which may contain spaces): state ppid pgrp …
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== group) continue
      for (const task of readdirSync(`/proc/${entry}/task`)) ns += Number(readFileSync(`/proc/${entry}/task/${task}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // the process or thread ended meanwhile
    }
  }
  return ns / 1000
}

interface Load {
  rps: number
  p99: number
  count: number
  errors: number
}

/**
 * Runs a load fixture against subject `name` and adds the CPU the subject used per answered request.
 * A failed request through ours fails the benchmark; one through a reference proxy is counted and printed.
 */
async function measured<T extends { count: number; errors: number }>(name: string, fixture: string, args: string[]): Promise<T & { cpuUs: number }> {
  const { group } = subjects[name]!
  const before = groupCpuUs(group)
  const result = JSON.parse(await run(fixture, args)) as T
  if (result.errors > 0 && name === 'ours') throw new Error(`ours: ${result.errors} errors`)
  return { ...result, cpuUs: (groupCpuUs(group) - before) / result.count }
}

/** A keep-alive load of CONNECTIONS requests in flight for `ms` on `name`'s `path`. */
const load = (name: string, path: string, ms: number) => measured<Load>(name, './fixtures/http-load.mjs', [subjects[name]!.base + path, String(CONNECTIONS), String(ms)])

/** `, N failed requests` when a reference proxy failed some (ours never gets here with any). */
const errorNote = (loads: readonly { errors: number }[]) => {
  const errors = loads.reduce((sum, l) => sum + l.errors, 0)
  return errors > 0 ? `, ${errors} failed requests` : ''
}

const verdict = (ok: boolean) => (ok ? 'OK' : 'MISSED')

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

/** The nginx binary: on the PATH, or Debian's /usr/sbin/nginx. */
function findNginx(): string | undefined {
  if (spawnSync('nginx', ['-v']).error === undefined) return 'nginx'
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined
}

/** nginx (one worker, keep-alive upstream) in front of `backendPort`, or undefined without nginx. */
async function startNginx(backendPort: number): Promise<Subject | undefined> {
  const binary = findNginx()
  if (binary === undefined) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  const port = await freePort()
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`,
  )
  const child = spawn(binary, ['-p', dir, '-c', join(dir, 'nginx.conf')], { detached: true, stdio: 'ignore' })
  const stop = () => {
    stopGroup(child.pid!)()
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  if (!(await listening(port))) {
    stop()
    return undefined
  }
  return { base: `http://127.0.0.1:${port}/`, group: child.pid!, stop }
}

async function startNode(script: string, args: string[], flags: string[] = []): Promise<Subject & { info: Record<string, unknown> }> {
  const { child, info } = await startSubject(process.execPath, [...flags, here(script), ...args])
  child.removeAllListeners('exit')
  return { base: info.base as string, group: child.pid!, stop: stopGroup(child.pid!), info }
}

const subjects: Record<string, Subject> = {}
try {
  const ours = await startNode('./fixtures/proxy-ours.ts', [], ['--import', 'tsx'])
  subjects.ours = ours
  const backendPort = String(ours.info.backendPort)
  subjects['http-proxy'] = await startNode('./fixtures/proxy-http-proxy.mjs', [backendPort])
  subjects.floor = await startNode('./fixtures/proxy-floor.mjs', [backendPort])
  subjects.bare = await startNode('./fixtures/proxy-bare.mjs', [backendPort])
  const nginx = await startNginx(Number(backendPort))
  if (nginx) subjects.nginx = nginx
  const names = Object.keys(subjects)
  const others = (name: string) => names.filter((n) => n !== name)

  /** Runs `measure` for every subject, ROUNDS times, the order rotating each round. */
  async function rounds<T>(measure: (name: string) => Promise<T>): Promise<Record<string, T[]>> {
    const all: Record<string, T[]> = Object.fromEntries(names.map((name) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + round) % names.length]!
        all[name]!.push(await measure(name))
      }
    }
    return all
  }
  /** The median over rounds of `pick(subject) / pick(baseline)`. */
  const ratio = <T>(all: Record<string, T[]>, name: string, baseline: string, pick: (r: T) => number) =>
    median(all[name]!.map((r, round) => pick(r) / pick(all[baseline]![round]!)))

  for (const [path, label] of [
    ['', '/ (13 bytes: pure proxy overhead)'],
    ['doc', '/doc (the backend serialises 4 KB per request)'],
  ] as const) {
    for (const name of names) await load(name, path, 600) // warm-up: JIT, keep-alive pools
    const all = await rounds((name) => load(name, path, MS))
    console.log(`HTTP ${label}, ${CONNECTIONS} in flight, ${ROUNDS} interleaved rounds of ${MS / 1000} s`)
    for (const name of names) {
      const r = all[name]!
      console.log(
        `  ${name.padEnd(10)} CPU ${median(r.map((x) => x.cpuUs)).toFixed(1).padStart(6)} µs/request, ${median(r.map((x) => x.rps)).toFixed(0).padStart(6)} req/s, p99 ${median(r.map((x) => x.p99)).toFixed(2)} ms${errorNote(r)}`,
      )
    }
    const cpu = ratio(all, 'ours', 'http-proxy', (x) => x.cpuUs)
    const rps = ratio(all, 'ours', 'http-proxy', (x) => x.rps)
    const p99 = ratio(all, 'ours', 'http-proxy', (x) => x.p99)
    console.log(`  ours vs http-proxy: CPU per request ${cpu.toFixed(2)}× (goal ≤ ${GOALS.cpu.toFixed(2)}×) ${verdict(cpu <= GOALS.cpu)}; throughput ${rps.toFixed(2)}× (goal ≥ ${GOALS.rps.toFixed(2)}×) ${verdict(rps >= GOALS.rps)}; p99 ${p99.toFixed(2)}× (goal ≤ ${GOALS.p99.toFixed(2)}×) ${verdict(p99 <= GOALS.p99)}`)
    const overFloor = ratio(all, 'ours', 'floor', (x) => x.cpuUs)
    console.log(`  ours vs the floor of its design (node:http + undici relaying, nothing else): CPU per request ${overFloor.toFixed(2)}×; the floor vs http-proxy ${ratio(all, 'floor', 'http-proxy', (x) => x.cpuUs).toFixed(2)}×`)
    console.log(`  for scale, CPU per request vs ours: ${others('ours').map((n) => `${n} ${(1 / ratio(all, 'ours', n, (x) => x.cpuUs)).toFixed(2)}×`).join(', ')}`)
  }

  // The same CPU figure at a fixed rate below saturation: every subject gets the same requests at the
  // same times, so it does not depend on how many requests a subject batches per wake-up under a full
  // load (the main source of run-to-run spread above).
  {
    const all = await rounds((name) => measured<{ count: number; errors: number }>(name, './fixtures/http-rate.mjs', [subjects[name]!.base, String(RATE), String(RATE_MS)]))
    console.log(`HTTP / at a fixed ${RATE} req/s (below saturation), ${ROUNDS} interleaved rounds of ${RATE_MS / 1000} s`)
    for (const name of names) console.log(`  ${name.padEnd(10)} CPU ${median(all[name]!.map((x) => x.cpuUs)).toFixed(1).padStart(6)} µs/request${errorNote(all[name]!)}`)
    const cpu = ratio(all, 'ours', 'http-proxy', (x) => x.cpuUs)
    console.log(
      `  ours vs http-proxy: CPU per request ${cpu.toFixed(2)}× (goal ≤ ${GOALS.cpu.toFixed(2)}×) ${verdict(cpu <= GOALS.cpu)}; ` +
        `the floor vs http-proxy ${ratio(all, 'floor', 'http-proxy', (x) => x.cpuUs).toFixed(2)}×; ours vs the floor ${ratio(all, 'ours', 'floor', (x) => x.cpuUs).toFixed(2)}×`,
    )
  }

  // WebSocket: one client, round trips to every subject interleaved trip by trip (the same load for all).
  // (The floor has no upgrade path: WebSocket is compared with the bare forwarder.)
  const wsNames = names.filter((name) => name !== 'floor')
  const ws: Record<string, number[]> = Object.fromEntries(wsNames.map((name) => [name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = wsNames.map((_, i) => wsNames[(i + round) % wsNames.length]!)
    const means = JSON.parse(await run('./fixtures/ws-compare.mjs', [String(WS_TRIPS), ...order.map((name) => subjects[name]!.base.replace('http', 'ws'))])) as { mean: number }[]
    order.forEach((name, i) => ws[name]!.push(means[i]!.mean))
  }
  console.log(`WebSocket echo round trip (32 bytes, sequential, interleaved trip by trip; ${ROUNDS} rounds of ${WS_TRIPS} per subject)`)
  for (const name of wsNames) console.log(`  ${name.padEnd(10)} ${(median(ws[name]!) * 1000).toFixed(0)} µs`)
  const wsRatio = ratio(ws, 'ours', 'bare', (x) => x)
  console.log(`  ours vs the bare forwarder ${wsRatio.toFixed(2)}× (goal ≤ ${GOALS.ws.toFixed(2)}×) ${verdict(wsRatio <= GOALS.ws)}; http-proxy ${ratio(ws, 'http-proxy', 'bare', (x) => x).toFixed(2)}×${subjects.nginx ? `, nginx ${ratio(ws, 'nginx', 'bare', (x) => x).toFixed(2)}×` : ''}`)
} finally {
  for (const subject of Object.values(subjects)) subject.stop()
}
