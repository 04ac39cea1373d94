/**
 * A small v2 API on a real `node:http` server on 127.0.0.1, for pool tests: connect by key (one
 * live backend per key, as the engine does), and a status stream per backend that replays its
 * history and then follows live. Tests drive it: hold connect answers at a gate, fail calls, move
 * a backend's status, and count connect calls and open streams.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { BackendState, BackendStatus, ConnectResponse } from '../../src/wire.js'

interface Backend {
  id: string
  key: string
  history: BackendState[]
  streams: Set<ServerResponse>
}

export interface ConnectCall {
  key: string
  user: string | undefined
  /** The request's `spawn` option. */
  spawn: unknown
  /** True once the client went away before the answer. */
  aborted: boolean
}

export interface FakeApi {
  readonly apiUrl: string
  /** Every connect call received, in order. */
  readonly calls: ConnectCall[]
  /** Status streams open now. */
  openStreams(): number
  /** Status streams opened so far. */
  streamsOpened(): number
  /** The live backend holding `key`, if any. */
  backendFor(key: string): string | undefined
  /** Holds connect answers until the returned function is called. */
  hold(): () => void
  /** The next `n` connect calls answer 500. */
  failNext(n: number): void
  /** Moves a backend to a status (terminating/terminated free or keep the key as the engine does). */
  setStatus(backendId: string, status: BackendStatus): void
  /** Requests received on the backends' ready_url (held open, never answered). */
  readyHits(): number
  /** Resolves when `n` connect calls have been received. */
  received(n: number): Promise<void>
  close(): Promise<void>
}

function stateOf(status: BackendStatus): BackendState {
  const time = new Date().toISOString()
  if (status === 'terminating' || status === 'hard-terminating') return { status, time, termination_reason: 'external' }
  if (status === 'terminated') return { status, time, termination_reason: 'external', termination_kind: 'soft', exit_error: false }
  return { status, time }
}

/** `readyUrl`: connect responses carry a ready_url (a long-poll that is held, never answered). */
export async function startFakeApi(options: { readyUrl?: boolean } = {}): Promise<FakeApi> {
  const backends = new Map<string, Backend>()
  const byKey = new Map<string, Backend>()
  const calls: ConnectCall[] = []
  let gate: Promise<void> | undefined
  let failures = 0
  let opened = 0
  let seq = 0
  const waiters: Array<{ n: number; resolve: () => void }> = []
  const held = new Set<ServerResponse>()
  let readyHits = 0

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const stream = /^\/v2\/backend\/([^/]+)\/status\/stream$/.exec(url.pathname)
    if (stream) {
      const backend = backends.get(stream[1]!)
      if (!backend) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      opened++
      for (const state of backend.history) res.write(`data:${JSON.stringify(state)}\nid:${state.status}\n\n`)
      if (backend.history.at(-1)?.status === 'terminated') return void res.end()
      backend.streams.add(res)
      res.on('close', () => backend.streams.delete(res))
      return
    }
    if (url.pathname.endsWith('/ready')) {
      readyHits++
      held.add(res)
      res.on('close', () => held.delete(res))
      return
    }
    if (req.method === 'POST' && url.pathname.endsWith('/connect')) {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => (body += chunk))
      req.on('end', async () => {
        const request = JSON.parse(body) as { key: string; user?: string; spawn?: unknown }
        const call: ConnectCall = { key: request.key, user: request.user, spawn: request.spawn, aborted: false }
        res.on('close', () => {
          if (!res.writableFinished) call.aborted = true
        })
        calls.push(call)
        for (const w of waiters.filter((w) => calls.length >= w.n)) w.resolve()
        await gate
        if (call.aborted) return
        if (failures > 0) {
          failures--
          return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"Internal","message":"boom"}}')
        }
        let backend = byKey.get(request.key)
        if (!backend && request.spawn === false) {
          // As the engine: spawn: false only ever returns a running backend.
          const error = { error: { status: 409, code: 'KeyUnheldNoSpawnConfig', message: 'no backend holds this key' } }
          return void res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify(error))
        }
        const spawned = !backend
        if (!backend) {
          const id = `b${++seq}`
          backend = { id, key: request.key, history: [stateOf('scheduled')], streams: new Set() }
          backends.set(id, backend)
          byKey.set(request.key, backend)
        }
        const response: ConnectResponse = {
          backend_id: backend.id,
          spawned,
          status: backend.history.at(-1)!.status,
          token: `tok-${calls.length}`,
          url: `http://127.0.0.1/${backend.id}/`,
          status_url: `${api.apiUrl}/v2/backend/${backend.id}/status`,
          ready_url: options.readyUrl ? `${api.apiUrl}/v2/backend/${backend.id}/ready` : '',
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(response))
      })
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const api: FakeApi = {
    apiUrl: `http://127.0.0.1:${port}`,
    calls,
    openStreams: () => [...backends.values()].reduce((n, b) => n + b.streams.size, 0),
    streamsOpened: () => opened,
    backendFor: (key) => byKey.get(key)?.id,
    readyHits: () => readyHits,
    hold() {
      let release!: () => void
      gate = new Promise((resolve) => (release = resolve))
      return () => {
        gate = undefined
        release()
      }
    },
    failNext(n) {
      failures = n
    },
    setStatus(backendId, status) {
      const backend = backends.get(backendId)!
      const state = stateOf(status)
      backend.history.push(state)
      for (const res of backend.streams) {
        res.write(`data:${JSON.stringify(state)}\nid:${status}\n\n`)
        if (status === 'terminated') res.end()
      }
      // The engine holds the key until terminated.
      if (status === 'terminated' && byKey.get(backend.key) === backend) byKey.delete(backend.key)
    },
    received(n) {
      if (calls.length >= n) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ n, resolve }))
    },
    async close() {
      for (const b of backends.values()) for (const res of b.streams) res.destroy()
      for (const res of held) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return api
}
