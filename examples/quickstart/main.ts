/**
 * Quickstart: start the local server in-process, spawn a session backend with a key, follow its
 * status live, talk to it over HTTP and WebSocket through the proxy, connect the same key again,
 * terminate it and read the state it saved. Run with `npm run demo` (no account, nothing else to install).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { startDevServer } from '../../src/dev/index.js'
import { Jamsocket } from '../../src/index.js'

const t0 = Date.now()
const at = () => `+${String(Date.now() - t0).padStart(4)} ms`
const backendFile = fileURLToPath(new URL('./backend.mjs', import.meta.url))

// 1. The local server: the Jamsocket v2 API on one port, the backend proxy on another (0 = any free).
// The backend imports session-backends/backend from source, hence tsx; data directories go to a temp dir.
const dataDir = await mkdtemp(join(tmpdir(), 'quickstart-'))
const dev = await startDevServer({
  command: [process.execPath, '--import', 'tsx', backendFile],
  port: 0,
  proxyPort: 0,
  dataDir,
  onEvent: (event) => {
    if (event.type === 'log') console.log(`${at()}   [${event.line.backendId.slice(0, 6)}] ${event.line.text}`)
  },
})
console.log(`${at()} dev server: API ${dev.apiUrl}, proxy ${dev.proxyUrl}`)

try {
  // 2. The same client you would use against the hosted platform, in dev mode.
  const jamsocket = new Jamsocket({ dev: true, port: dev.port })
  // mount: a data directory for this key, where the backend saves its state when terminated.
  const backend = await jamsocket.connect({ key: 'doc-42', user: 'ada', auth: { role: 'editor' }, spawn: { executable: { mount: true } } })
  console.log(`${at()} connect: backend ${backend.backend_id}, spawned=${backend.spawned}, status=${backend.status}`)

  const transitions: string[] = []
  backend.on('status', (state) => {
    transitions.push(state.status)
    const why = 'termination_reason' in state && state.termination_reason ? ` (${state.termination_reason})` : ''
    console.log(`${at()} status: ${state.status}${why} at ${state.time}`)
  })
  const terminated = new Promise((resolve) => backend.once('terminated', resolve))

  await backend.waitUntilReady({ timeoutMs: 10_000 })
  console.log(`${at()} ready: ${backend.url.replace(backend.token, '<token>')}`)

  // 3. HTTP through the proxy: the token in the URL identifies the backend and the user, whom the
  //    backend reads from the x-verified-* headers the proxy sets (identity() of session-backends/backend).
  //    The secret_token goes along by another channel (a header), and the backend checks it (checkSecret()).
  const secret = { 'x-backend-secret': backend.secret_token ?? '' }
  const without = await fetch(`${backend.url}hello`)
  console.log(`${at()} GET /hello without the secret_token → ${without.status}`)
  for (const path of ['hello', 'again?x=1']) {
    const answer = (await (await fetch(`${backend.url}${path}`, { headers: secret })).json()) as { greeting: string; auth: unknown; requests: number }
    console.log(`${at()} GET /${path} → "${answer.greeting}", auth=${JSON.stringify(answer.auth)}, requests=${answer.requests}`)
  }

  // 4. A WebSocket through the proxy.
  const socket = new WebSocket(`${backend.url.replace(/^http/, 'ws')}ws`, { headers: secret })
  const echo = await new Promise<string>((resolve, reject) => {
    socket.once('open', () => socket.send('hello over WebSocket'))
    socket.once('message', (data) => resolve(String(data)))
    socket.once('error', reject)
  })
  socket.close()
  console.log(`${at()} WebSocket: ${echo}`)

  // 5. The same key again: the same backend (spawned=false) and a fresh connection token.
  const again = await jamsocket.connect({ key: 'doc-42' })
  console.log(`${at()} connect again: backend ${again.backend_id}, spawned=${again.spawned}, same=${again.backend_id === backend.backend_id}, new token=${again.token !== backend.token}`)

  // 6. Terminate (soft: SIGTERM, then SIGKILL after the grace period) and wait for the end. The
  //    backend's onTerminate() saves its state in its data directory and exits before the SIGKILL.
  await jamsocket.terminate(backend.backend_id)
  const final = (await terminated) as { termination_reason?: string; exit_error?: boolean }
  backend.close()
  again.close()
  const saved = await readFile(join(dataDir, 'doc-42', 'state.json'), 'utf8')

  console.log(`\nSummary`)
  console.log(`  statuses seen: ${transitions.join(' → ')}`)
  console.log(`  ended: reason=${final.termination_reason}, exit_error=${final.exit_error}`)
  console.log(`  same backend on reconnect: ${again.backend_id === backend.backend_id && !again.spawned}`)
  console.log(`  state saved on SIGTERM: ${saved}`)
} finally {
  await dev.close()
  await rm(dataDir, { recursive: true, force: true })
  console.log(`${at()} dev server closed, no backend process left`)
}
