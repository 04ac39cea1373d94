/**
 * 100 backends alive at once on this machine: (1) connects to an existing key per second (the
 * common case: every page load of a document), from a keep-alive load loop in a child process, with
 * the ratio against the same loop on `GET status` of the same server as the floor of a request that
 * does nothing (goal ≥ 2,000 connects/s); (2) the server's own memory per live backend (heap and
 * RSS growth of this process, backend processes excluded).
 * Run alone: `node --import tsx --expose-gc bench/dev-scale.bench.ts`.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startDevServer } from '../src/dev/index.js'

const run = promisify(execFile)
const BACKENDS = 100
const GOAL = 2000
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

function memory(): { heap: number; rss: number } {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}

const dev = await startDevServer({ command: [process.execPath, here('./fixtures/dev-hello.mjs')], port: 0, proxyPort: 0, defaultMaxIdleSeconds: 0 })
try {
  // A first backend so that code paths are warm before the baseline is taken.
  const warm = (await (await fetch(`${dev.apiUrl}/v2/service/-/-/connect`, { method: 'POST', body: '{"key":"warm"}' })).json()) as { ready_url: string }
  await fetch(warm.ready_url)
  const before = memory()
  const started = performance.now()
  const ids: string[] = []
  for (let i = 0; i < BACKENDS; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: 10 }, async (_, j) => {
        const response = await fetch(`${dev.apiUrl}/v2/service/-/-/connect`, { method: 'POST', body: JSON.stringify({ key: `doc-${i + j}` }) })
        const cr = (await response.json()) as { ready_url: string; backend_id: string }
        while ((await fetch(cr.ready_url)).status === 202);
        return cr.backend_id
      }),
    )
    ids.push(...batch)
  }
  const spawnSeconds = (performance.now() - started) / 1000
  const after = memory()
  console.log(`${BACKENDS} backends ready in ${spawnSeconds.toFixed(1)} s (10 at a time)`)
  console.log(`  server memory per live backend: heap ${((after.heap - before.heap) / BACKENDS / 1024).toFixed(1)} KiB, RSS ${((after.rss - before.rss) / BACKENDS / 1024).toFixed(1)} KiB (backend processes excluded)`)

  const load = async (url: string, method: string, body?: string) => {
    const args = [here('./fixtures/http-load.mjs'), url, '16', '3000', method, ...(body === undefined ? [] : [body])]
    return JSON.parse((await run(process.execPath, args)).stdout) as { rps: number; p99: number; errors: number }
  }
  const connectUrl = `${dev.apiUrl}/v2/service/-/-/connect`
  await load(connectUrl, 'POST', '{"key":"doc-7"}')
  const connects = await load(connectUrl, 'POST', '{"key":"doc-7"}')
  const status = await load(`${dev.apiUrl}/v2/backend/${ids[7]}/status`, 'GET')
  if (connects.errors > 0 || status.errors > 0) throw new Error('load errors')
  const live = (await (await fetch(`${dev.apiUrl}/v2/account/-/backends`)).json()) as { running_backends: unknown[] }
  console.log(`connect to an existing key with ${live.running_backends.length} backends alive: ${connects.rps.toFixed(0)} connects/s, p99 ${connects.p99.toFixed(2)} ms (goal ≥ ${GOAL}) ${connects.rps >= GOAL ? 'OK' : 'MISSED'}`)
  console.log(`  floor (GET status on the same server): ${status.rps.toFixed(0)} req/s; connect/status ratio ${(connects.rps / status.rps).toFixed(2)}×`)
  const afterLoad = memory()
  console.log(`  server heap after ${(connects.rps * 3.7).toFixed(0)} connects (one fresh token each): +${((afterLoad.heap - after.heap) / 1024 / 1024).toFixed(1)} MiB (tokens are capped at 10,000 per backend)`)
} finally {
  const closing = performance.now()
  await dev.close()
  console.log(`close() with ${BACKENDS + 1} backends: ${((performance.now() - closing) / 1000).toFixed(2)} s until every process was gone`)
}
