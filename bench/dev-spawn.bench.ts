/**
 * Spawn-to-ready as a user sees it: `await (await jamsocket.connect({ key })).waitUntilReady()`
 * through the library against the local server, compared with starting the same minimal Node HTTP
 * backend by hand (`spawn` on a free port, in a session of its own and with the same small base
 * environment as the server starts backends)
 * and sending `HEAD /` every 1 ms until it answers, in the same run. The local server runs in a
 * session of its own. Rounds alternate which goes first; the ratio is the median of the per-round
 * ratios. Goal: ≤ 1.10×. Run alone: `node --import tsx --expose-gc bench/dev-spawn.bench.ts`.
 */
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { isBaseName } from '../src/dev/env.js'
import { Jamsocket } from '../src/index.js'
import { alternate, freePort, median } from './lib.js'

const ROUNDS = 21
const POLL_MS = 1
const GOAL = 1.1
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const backend = here('./fixtures/dev-hello.mjs')

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

// The environment the local server starts backends from (its small base), so that both start the same
// way: e.g. NODE_EXTRA_CA_CERTS alone adds milliseconds to a Node process's start.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => isBaseName(name)))

async function byHand(): Promise<number> {
  const start = performance.now()
  const port = await freePort()
  const child = spawn(process.execPath, [backend], { env: { ...baseEnv, PORT: String(port) }, stdio: 'ignore', detached: true })
  while (!(await answers(port))) await new Promise((r) => setTimeout(r, POLL_MS))
  const elapsed = performance.now() - start
  const exited = new Promise((r) => child.once('exit', r))
  process.kill(-child.pid!, 'SIGKILL')
  await exited
  return elapsed
}

// The local server, in a session of its own.
const server = spawn(process.execPath, ['--import', 'tsx', here('./fixtures/dev-server.ts')], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
const port = await new Promise<number>((resolve, reject) => {
  let out = ''
  server.stdout!.setEncoding('utf8').on('data', (text: string) => {
    out += text
    if (out.includes('\n')) resolve((JSON.parse(out) as { port: number }).port)
  })
  server.once('exit', (code) => reject(new Error(`the local server exited with ${code}`)))
})
const jamsocket = new Jamsocket({ dev: true, port })
let n = 0
async function viaLibrary(): Promise<number> {
  const start = performance.now()
  const handle = await jamsocket.connect({ key: `spawn-${n++}` })
  await handle.waitUntilReady()
  const elapsed = performance.now() - start
  handle.close()
  await jamsocket.terminate(handle.backend_id, { hard: true })
  return elapsed
}

try {
  await byHand()
  await viaLibrary()
  const hand: number[] = []
  const library: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const [byHandMs, libraryMs] = await alternate(round, byHand, viaLibrary)
    hand.push(byHandMs)
    library.push(libraryMs)
  }
  const ratio = median(library.map((l, i) => l / hand[i]!))
  console.log(`spawn-to-ready, median of ${ROUNDS} alternating rounds: by hand (spawn + HEAD / every ${POLL_MS} ms) ${median(hand).toFixed(1)} ms, through the library (connect() + waitUntilReady()) ${median(library).toFixed(1)} ms`)
  console.log(`  ratio ${ratio.toFixed(2)}× (goal ≤ ${GOAL.toFixed(2)}×) ${ratio <= GOAL ? 'OK' : 'MISSED'}`)
} finally {
  process.kill(-server.pid!, 'SIGTERM')
}
