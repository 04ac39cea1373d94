/**
 * A scriptable `node:http` server on 127.0.0.1 for status-stream fault tests. Each request is
 * handed to a script with helpers to write chunks, end, reset the socket, stall or answer a status
 * code; the server counts hits per path and records `Last-Event-ID`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { BackendState, BackendStatus, ConnectResponse } from '../../src/wire.js'

/** One request to the server, as a script sees it. */
export interface Connection {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  /** The path without the query. */
  readonly path: string
  /** 0 for the first request to this path, 1 for the second, … */
  readonly index: number
  /** The request's Last-Event-ID header, if any. */
  readonly lastEventId: string | undefined
  /** Starts an event stream (200, text/event-stream) unless already started. */
  open(headers?: Record<string, string>): void
  /** Writes a chunk (opening the stream first if needed) and waits until it is flushed. */
  write(chunk: string | Uint8Array): Promise<void>
  /** Ends the response cleanly. */
  end(): void
  /** Resets the TCP connection (RST). */
  reset(): void
  /** Answers with a status code (and headers, body) and ends. */
  status(code: number, headers?: Record<string, string>, body?: string): void
  /** Resolves when the client goes away. */
  readonly gone: Promise<void>
}

export type Script = (connection: Connection) => void | Promise<void>

export interface RecordedRequest {
  /** The request URL (path and query). */
  url: string
  path: string
  index: number
  lastEventId: string | undefined
  accept: string | undefined
  /** `sec-fetch-mode`: fetch (undici) sends it, `node:http` does not. */
  secFetchMode: string | undefined
}

export interface SseServer {
  /** `http://127.0.0.1:{port}` */
  readonly origin: string
  /** Every request so far. */
  readonly requests: RecordedRequest[]
  /** The number of requests whose path ends with `suffix` (all when omitted). */
  hits(suffix?: string): number
  /** A ConnectResponse whose status_url is on this server (`/v2/backend/{id}/status`). */
  connectResponse(id: string, status?: BackendStatus, readyUrl?: boolean): ConnectResponse
  close(): Promise<void>
}

/** Starts a server that hands every request to `script`. */
export async function startSseServer(script: Script): Promise<SseServer> {
  const requests: RecordedRequest[] = []
  const counts = new Map<string, number>()
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const index = counts.get(path) ?? 0
    counts.set(path, index + 1)
    const header = req.headers['last-event-id']
    const lastEventId = typeof header === 'string' ? header : undefined
    const mode = req.headers['sec-fetch-mode']
    requests.push({ url: req.url ?? '/', path, index, lastEventId, accept: req.headers.accept, secFetchMode: typeof mode === 'string' ? mode : undefined })
    let opened = false
    const gone = new Promise<void>((resolve) => res.on('close', () => resolve()))
    const connection: Connection = {
      req,
      res,
      path,
      index,
      lastEventId,
      gone,
      open(headers = {}) {
        if (opened) return
        opened = true
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...headers })
        res.flushHeaders()
      },
      write(chunk) {
        connection.open()
        return new Promise<void>((resolve) => {
          if (res.destroyed || res.writableEnded) return resolve()
          res.write(chunk, () => resolve())
        })
      },
      end() {
        connection.open()
        if (!res.writableEnded) res.end()
      },
      reset() {
        req.socket.resetAndDestroy()
      },
      status(code, headers = {}, body) {
        opened = true
        res.writeHead(code, headers)
        res.end(body)
      },
    }
    Promise.resolve()
      .then(() => script(connection))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500)
        res.end()
      })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  // A reset socket emits errors on the server side; they are expected here.
  server.on('clientError', (_error, socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    origin,
    requests,
    hits(suffix) {
      return suffix === undefined ? requests.length : requests.filter((r) => r.path.endsWith(suffix)).length
    },
    connectResponse(id, status = 'scheduled', readyUrl = false) {
      return {
        backend_id: id,
        spawned: true,
        status,
        token: `tok-${id}`,
        url: `${origin}/${id}/`,
        secret_token: null,
        status_url: `${origin}/v2/backend/${id}/status`,
        ready_url: readyUrl ? `${origin}/v2/backend/${id}/ready` : '',
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

const T0 = Date.parse('2024-08-15T14:11:55.000Z')

/** A state of the standard lifecycle, with a deterministic time. */
export function stateOf(status: BackendStatus, step = 0): BackendState {
  const time = new Date(T0 + step * 1000).toISOString()
  switch (status) {
    case 'terminating':
    case 'hard-terminating':
      return { status, time, termination_reason: 'external', termination_kind: status === 'terminating' ? 'soft' : 'hard' }
    case 'terminated':
      return { status, time, termination_reason: 'external', termination_kind: 'soft', exit_error: false }
    default:
      return { status, time }
  }
}

/** An SSE event as Plane frames it (`data:{json}\nid:{status}\n\n`) or as the dev server does (no id). */
export function frame(state: BackendState, style: 'plane' | 'dev' = 'plane'): string {
  const data = `data:${JSON.stringify(state)}\n`
  return style === 'plane' ? `${data}id:${state.status}\n\n` : `${data}\n`
}

/** Resolves when `predicate` holds, checking after every macrotask (bounded). */
export async function until(predicate: () => boolean, what = 'condition', limitMs = 5_000): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}
