/**
 * Status following at scale: 1,000 backends followed at once on one local server that emits the
 * full lifecycle (scheduled → loading → starting → waiting → ready → terminating → terminated).
 *
 * Measured for handles made both ways a Node server makes them, from the client (`jamsocket.handle()`)
 * and by hand (`new BackendHandle(connectResponse)` from `session-backends`), both following over
 * node:http, and, in the same rounds, for the `eventsource` npm package (4.x) as the baseline (plus,
 * once each, a BackendHandle on fetch as a browser builds it, and a bare fetch stream):
 * - heap bytes per followed backend, while all 1,000 streams are open (global.gc() before both
 *   readings);
 * - the delay from the server's write of a status to the handler call, p50/p99, on one clock
 *   (CLOCK_MONOTONIC via process.hrtime, shared by all processes of the machine).
 *
 * The server runs in its own process and each client kind in its own process, so that neither the
 * server's objects nor the other client's leftovers count in a heap figure.
 *
 * The heap is read twice: with every stream open at `scheduled`, and again at `ready` (each handle
 * then holds its history of five statuses).
 *
 * With STATUS_BENCH_BASE=<another checkout of this repo> (e.g. a worktree of main), handles from
 * that checkout's src run too, interleaved round by round, and their heap is the baseline of a
 * "this tree vs that tree" ratio (how the cost of a change to the handle is measured).
 *
 * Run alone: node --import tsx --expose-gc bench/status.bench.ts
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const N = 1_000
const ROUNDS = 4 // each client kind runs this many times (alternating order); median heap, pooled delays
const LIFE = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'terminated'] as const
const GOAL_MEMORY = 0.7
const GOAL_P99 = 1.2
const self = fileURLToPath(import.meta.url)
const BASE = process.env.STATUS_BENCH_BASE

function stateJson(status: (typeof LIFE)[number], step: number): string {
  const time = new Date(Date.UTC(2024, 7, 15, 14, 0, step)).toISOString()
  const extra = status === 'terminating' || status === 'terminated' ? ',"termination_reason":"external","termination_kind":"soft"' : ''
  return `{"status":"${status}","time":"${time}"${extra}}`
}

// ---------------------------------------------------------------------------------------------
// Server process: serves /v2/backend/{id}/status/stream, Plane framing, history replay on connect.
// POST /next writes the next status to every open stream and records each write time per stream.

function runServer(): void {
  let step = 0
  const streams = new Map<string, ServerResponse>()
  const writes: Array<[string, number, string]> = [] // id, step, hrtime ns
  const server = createServer((req, res) => {
    const url = req.url ?? '/'
    if (req.method === 'POST' && url === '/reset') {
      step = 0
      writes.length = 0
      for (const s of streams.values()) s.destroy()
      streams.clear()
      return res.end('ok')
    }
    if (req.method === 'POST' && url === '/next') {
      step++
      const chunk = `data:${stateJson(LIFE[step]!, step)}\nid:${LIFE[step]}\n\n`
      for (const [id, s] of streams) {
        writes.push([id, step, String(process.hrtime.bigint())])
        s.write(chunk)
      }
      return res.end('ok')
    }
    if (url === '/times') return res.end(JSON.stringify(writes))
    const match = /^\/v2\/backend\/([^/]+)\/status\/stream/.exec(url)
    if (!match) return res.writeHead(404).end()
    const id = match[1]!
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    let replay = ''
    for (let i = 0; i <= step; i++) replay += `data:${stateJson(LIFE[i]!, i)}\nid:${LIFE[i]}\n\n`
    res.write(replay)
    streams.set(id, res)
    res.on('close', () => {
      if (streams.get(id) === res) streams.delete(id)
    })
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => {
    console.log(`PORT ${(server.address() as AddressInfo).port}`)
  })
}

// ---------------------------------------------------------------------------------------------
// Client process: follows N backends with one kind of client and prints its figures as JSON.

interface ClientResult {
  kind: string
  heapPerHandle: number
  /** Heap per handle once every handle is at `ready` (its history holds five statuses). */
  heapAtReady: number
  /** Write → handler delays in ms, per lifecycle step (index = step). */
  byStep: number[][]
}

type Follow = (id: string, url: string, onStatus: (status: string) => void) => () => void

type Kind = 'handle' | 'new-handle' | 'base-handle' | 'fetch-handle' | 'eventsource' | 'floor'

async function runClient(kind: Kind, origin: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc')
  let follow: Follow
  if (kind === 'handle' || kind === 'base-handle') {
    // What a Node server follows with: handles from the client (the node:http stream transport).
    const from = kind === 'handle' ? '../src/index.js' : pathToFileURL(join(BASE!, 'src/index.ts')).href
    const { Jamsocket } = (await import(from)) as typeof import('../src/index.js')
    const jamsocket = new Jamsocket({ dev: true })
    follow = (id, url, onStatus) => {
      const handle = jamsocket.handle({ backend_id: id, spawned: true, status: 'scheduled', token: 't', url: 'u', status_url: url, ready_url: '' })
      handle.on('status', (s) => onStatus(s.status))
      return () => handle.close()
    }
  } else if (kind === 'new-handle' || kind === 'fetch-handle') {
    // new-handle: the same, made by hand from a ConnectResponse with the package's main entry (on Node);
    // fetch-handle: what a browser follows with, a handle from the status layer alone, over fetch.
    const { BackendHandle } = kind === 'new-handle' ? await import('../src/index.js') : await import('../src/status/index.js')
    follow = (id, url, onStatus) => {
      const handle = new BackendHandle({ backend_id: id, spawned: true, status: 'scheduled', token: 't', url: 'u', status_url: url, ready_url: '' })
      handle.on('status', (s) => onStatus(s.status))
      return () => handle.close()
    }
  } else if (kind === 'floor') {
    // Not a client: the least any fetch-based follower can hold per stream (fetch, a reader, a
    // decoder, a regex instead of a parser). It shows how much of the heap is the fetch itself.
    follow = (_id, url, onStatus) => {
      const controller = new AbortController()
      void fetch(`${url}/stream`, { signal: controller.signal })
        .then(async (response) => {
          const reader = response.body!.getReader()
          const decoder = new TextDecoder()
          for (;;) {
            const { done, value } = await reader.read()
            if (done) return
            for (const match of decoder.decode(value, { stream: true }).matchAll(/"status":"([a-z-]+)"/g)) {
              onStatus(match[1]!)
              if (match[1] === 'terminated') controller.abort()
            }
          }
        })
        .catch(() => {})
      return () => controller.abort()
    }
  } else {
    const { EventSource } = await import('eventsource')
    follow = (_id, url, onStatus) => {
      const es = new EventSource(`${url}/stream`)
      es.onmessage = (event) => {
        const state = JSON.parse(event.data) as { status: string }
        onStatus(state.status)
        if (state.status === 'terminated') es.close()
      }
      return () => es.close()
    }
  }
  const post = (path: string) => fetch(`${origin}${path}`, { method: 'POST' }).then((r) => r.text())

  async function lifecycle(count: number, measure: boolean): Promise<ClientResult> {
    await post('/reset')
    const received = new Map<string, Map<string, bigint>>()
    let counts = new Array<number>(LIFE.length).fill(0)
    const waiters: Array<() => void> = []
    const reached = (step: number) =>
      new Promise<void>((resolve) => {
        if (counts[step]! >= count) return resolve()
        waiters[step] = resolve
      })
    gc!()
    gc!()
    const before = process.memoryUsage().heapUsed
    const stops: Array<() => void> = []
    for (let i = 0; i < count; i++) {
      const id = `b${i}`
      const times = new Map<string, bigint>()
      received.set(id, times)
      stops.push(
        follow(id, `${origin}/v2/backend/${id}/status`, (status) => {
          times.set(status, process.hrtime.bigint())
          const step = LIFE.indexOf(status as (typeof LIFE)[number])
          if (++counts[step]! === count) waiters[step]?.()
        }),
      )
    }
    await reached(0)
    gc!()
    gc!()
    const open = process.memoryUsage().heapUsed
    let atReady = 0
    for (let step = 1; step < LIFE.length; step++) {
      await post('/next')
      await reached(step)
      if (LIFE[step] === 'ready') {
        gc!()
        gc!()
        atReady = process.memoryUsage().heapUsed
      }
    }
    const writes = JSON.parse(await (await fetch(`${origin}/times`)).text()) as Array<[string, number, string]>
    const byStep: number[][] = LIFE.map(() => [])
    for (const [id, step, at] of writes) {
      const got = received.get(id)?.get(LIFE[step]!)
      if (got === undefined) continue
      const ms = Number(got - BigInt(at)) / 1e6
      byStep[step]!.push(Math.round(ms * 1000) / 1000)
    }
    for (const stop of stops) stop()
    counts = []
    return { kind, heapPerHandle: measure ? (open - before) / count : 0, heapAtReady: measure ? (atReady - before) / count : 0, byStep }
  }

  await lifecycle(20, false) // warm-up: module init, JIT, the HTTP agent
  const result = await lifecycle(N, true)
  console.log(`RESULT ${JSON.stringify(result)}`)
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
// Main: starts the server, runs the client kinds, prints figures and ratios.

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill()
})

/** Every process in a session of its own (detached), so that no subject shares a process group with another. */
function spawnTsx(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', self, ...args], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

function firstLine(proc: ChildProcess, prefix: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = ''
    proc.stdout!.on('data', (d) => {
      buffer += String(d)
      // Only complete lines: a long RESULT line arrives in several chunks.
      const line = buffer.split('\n').slice(0, -1).find((l) => l.startsWith(prefix))
      if (line) resolve(line.slice(prefix.length).trim())
    })
    proc.on('exit', (code) => reject(new Error(`${prefix.trim()} process exited with ${code}`)))
  })
}

async function main(): Promise<void> {
  const server = spawnTsx(['server'])
  const port = await firstLine(server, 'PORT ')
  const origin = `http://127.0.0.1:${port}`
  const results: Record<string, ClientResult[]> = { handle: [], 'new-handle': [], 'base-handle': [], 'fetch-handle': [], eventsource: [], floor: [] }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Interleaved: each round runs the subjects in another order.
      const order: Kind[] = ['handle', 'new-handle', 'eventsource']
      if (BASE) order.push('base-handle')
      const kinds: Kind[] = order.map((_, i) => order[(i + round) % order.length]!)
      if (round === 0) kinds.push('floor', 'fetch-handle')
      for (const kind of kinds) {
        const client = spawnTsx(['client', kind, origin])
        results[kind]!.push(JSON.parse(await firstLine(client, 'RESULT ')) as ClientResult)
      }
    }
  } finally {
    server.kill()
  }
  const summary = (kind: string) => {
    const runs = results[kind]!
    const heaps = runs.map((r) => r.heapPerHandle).sort((a, b) => a - b)
    const atReady = runs.map((r) => r.heapAtReady).sort((a, b) => a - b)
    const delays = runs.flatMap((r) => r.byStep.flat()).sort((a, b) => a - b)
    return { heap: heaps[Math.floor((heaps.length - 1) / 2)]!, heapAtReady: atReady[Math.floor((atReady.length - 1) / 2)]!, p50: percentile(delays, 50), p99: percentile(delays, 99), samples: delays.length }
  }
  const ours = summary('handle')
  const byHand = summary('new-handle')
  const base = summary('eventsource')
  const p99Ratio = ours.p99 / base.p99
  const row = (name: string, s: typeof ours) =>
    `${name.padEnd(22)} ${Math.round(s.heap).toString().padStart(8)} B/handle   p50 ${s.p50.toFixed(3)} ms   p99 ${s.p99.toFixed(3)} ms   (${s.samples} deliveries)`
  console.log(`status: follow ${N} backends through the full lifecycle on one local server (${ROUNDS} runs each)`)
  console.log(row('jamsocket.handle()', ours))
  console.log(row('new BackendHandle()', byHand))
  console.log(row('eventsource 4 (base)', base))
  console.log(row('BackendHandle on fetch', summary('fetch-handle')) + '  (the browser path, for reference)')
  {
    for (const kind of ['handle', 'new-handle', 'eventsource']) {
      const steps = LIFE.map((status, step) => {
        const d = results[kind]!.flatMap((r) => r.byStep[step] ?? []).sort((a, b) => a - b)
        return d.length ? `${status} ${percentile(d, 50).toFixed(1)}/${percentile(d, 99).toFixed(1)}` : ''
      })
      console.log(`  ${kind} p50/p99 per step (ms): ${steps.filter(Boolean).join(', ')}`)
    }
  }
  const floor = summary('floor')
  console.log(
    `fetch floor: a bare fetch stream + reader holds ${Math.round(floor.heap)} B, so no fetch-based follower can reach ` +
      `${(floor.heap / base.heap).toFixed(2)}× the baseline (hence the node:http transport on Node)`,
  )
  console.log(
    `at ready (history of 5 statuses): jamsocket handle ${Math.round(ours.heapAtReady)} B/handle, eventsource ${Math.round(base.heapAtReady)} B: ` +
      `${(ours.heapAtReady / base.heapAtReady).toFixed(2)}×`,
  )
  if (BASE) {
    // The same handle kind from another checkout, run in the same rounds: what this tree's change costs.
    const other = summary('base-handle')
    console.log(row(`handle of ${BASE.split('/').pop()}`, other))
    const ratios = results.handle!.map((r, i) => [r.heapPerHandle / results['base-handle']![i]!.heapPerHandle, r.heapAtReady / results['base-handle']![i]!.heapAtReady])
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!
    console.log(
      `this tree vs ${BASE}: heap per handle ${median(ratios.map((r) => r[0]!)).toFixed(3)}× while open, ` +
        `${median(ratios.map((r) => r[1]!)).toFixed(3)}× at ready (median of ${ratios.length} round ratios; goal ≤ 1.05×)`,
    )
  }
  // The ratio per round (each subject against the baseline of the same round), then the median.
  const medianRatio = (kind: string) => {
    const ratios = results[kind]!.map((r, i) => r.heapPerHandle / results.eventsource![i]!.heapPerHandle).sort((a, b) => a - b)
    return ratios[Math.floor((ratios.length - 1) / 2)]!
  }
  for (const [name, kind] of [['jamsocket.handle()', 'handle'], ['new BackendHandle()', 'new-handle']] as const) {
    const ratio = medianRatio(kind)
    console.log(`memory per handle, ${name}: ${ratio.toFixed(2)}× baseline (goal ≤ ${GOAL_MEMORY}×) ${ratio <= GOAL_MEMORY ? 'MET' : 'MISSED'}`)
  }
  console.log(`p50 delay: ${(ours.p50 / base.p50).toFixed(2)}× baseline`)
  console.log(`p99 delay: ${p99Ratio.toFixed(2)}× baseline (goal ≤ ${GOAL_P99}×) ${p99Ratio <= GOAL_P99 ? 'MET' : 'MISSED'}`)
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'server') runServer()
else if (mode === 'client') await runClient(rest[0] as Kind, rest[1]!)
else await main()
