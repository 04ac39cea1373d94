/**
 * The proxy (`{proxyUrl}/{token}/…`): finds the backend by the token in the first path segment,
 * strips it, replaces any client identity headers with the server's (proxy-headers.ts), holds
 * requests until the backend is ready, passes WebSocket upgrades through as raw tunnels (tunnel.ts),
 * and counts traffic as activity for the idle sweep.
 *
 * Built on Node's own HTTP/1 parser (`node:http`) for the client side, and an `undici` Pool per
 * backend (keep-alive, one request per connection at a time, at most `connections` connections)
 * driven through `dispatch` with a plain
 * handler: the cheapest pooled upstream measured here (see bench/dev-proxy.bench.ts). This is the
 * component that sets the identity headers a backend trusts, so no HTTP framing is written by hand.
 */
import { request as httpRequest, Server, ServerResponse, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import { hostOf, upstreamHead, type UpstreamHead } from './proxy-headers.js'
import type { Backend, Grant, Registry } from './registry.js'
import { bracket, errorBody, type HostCheck, sendError as sendApiError } from './respond.js'
import { tunnel } from './tunnel.js'

/** What the proxy needs besides the registry. */
export interface ProxyOptions {
  holdMs: number
  /** Most connections to one backend at once; further requests wait in its pool. */
  connections: number
  /** Where the proxy's own problems are reported; it must not throw. */
  onError?: ((text: string) => void) | undefined
}

/** Limits of the proxy's listening server. */
export interface ProxyServerOptions {
  /** Deadline for a whole request head, from its first byte (408 after). */
  headTimeoutMs: number
  /** Most client connections open at once; more are closed as they come. */
  maxConnections: number
}

/** Request heads larger than this are refused with 431 (node:http's default). */
const MAX_HEAD = 16 * 1024
/** An idle keep-alive client connection is closed after this (announced as `keep-alive: timeout=60`). */
const IDLE_MS = 60_000
/** Bytes a client may send after an upgrade request before the backend has accepted it. */
const MAX_EARLY = 64 * 1024
/** Most requests one client connection may have waiting for their turn (pipelined); more close it. */
const MAX_WAITING = 64
/** A refused upgrade's answer is passed on whole up to this size (its body is read before it is sent on). */
const MAX_REFUSAL_BODY = 64 * 1024

const CORS_HEADERS = { 'access-control-allow-origin': '*', 'access-control-allow-methods': '*', 'access-control-allow-headers': '*, Authorization' }
/** The same, flat (`[name, value, …]`), as response heads are built here. */
const CORS = Object.entries(CORS_HEADERS).flat()

/**
 * The proxy's listening server. Half-open (`httpAllowHalfOpen`) so that a client which shuts down its
 * sending side still gets an answer to every request it completed.
 */
export function createProxyServer(options: ProxyServerOptions): Server {
  const server = new Server({
    maxHeaderSize: MAX_HEAD,
    keepAliveTimeout: IDLE_MS,
    headersTimeout: options.headTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.max(5, Math.min(1000, Math.floor(options.headTimeoutMs / 4))),
    noDelay: true,
  })
  // Not in the typings, but how node:http itself is told to keep a half-closed connection's answers.
  ;(server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
  server.maxConnections = options.maxConnections
  // Every header is read (the proxy refuses heads longer than a backend reads, and must see them all).
  server.maxHeadersCount = 0
  return server
}

/** Where the token of `/{token}/rest?q` ends: at the first `/` or `?` after it, or at the end of the URL. */
function tokenEnd(url: string): number {
  let end = 1
  const n = url.length
  while (end < n) {
    const c = url.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */) break
    end++
  }
  return end
}

/** The upstream path after a token that ends at `end` (`/rest?q`, `/` when empty). */
function pathAfter(url: string, end: number): string {
  if (end === url.length) return '/'
  return url.charCodeAt(end) === 47 ? url.slice(end) : `/${url.slice(end)}`
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  410: 'Gone',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
}

/** An error answer in the hosted API's shape, with CORS headers as Plane sends them on its own errors. */
function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendApiError(res, status, code, message, CORS_HEADERS)
}

/** The same answer written on a raw socket (an upgrade request has no ServerResponse), then closed. */
function endSocket(socket: Socket, status: number, code: string, message: string): void {
  const body = JSON.stringify(errorBody(status, code, message))
  let head = `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n`
  for (let i = 0; i < CORS.length; i += 2) head += `${CORS[i]}: ${CORS[i + 1]}\r\n`
  if (socket.writable) socket.end(`${head}connection: close\r\n\r\n${body}`)
  else socket.destroy()
}

/** Where an answer goes: a response, or the raw socket of an upgrade request. */
type Answer = ServerResponse | Socket

/** An error answer to a request or an upgrade request. */
function fail(to: Answer, status: number, code: string, message: string): void {
  if (to instanceof ServerResponse) sendError(to, status, code, message)
  else endSocket(to, status, code, message)
}

/** The response head a client gets: the backend's minus hop-by-hop fields, plus the backend id and CORS (unless the backend set its own). */
function responseHeaders(raw: Buffer[] | string[], backendId: string, upgrade: boolean): string[] {
  const out: string[] = []
  let cors = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const first = name.charCodeAt(0) | 32
    const n = name.length
    // Only these can be a field dropped or looked at below: connection and keep-alive (10 characters),
    // upgrade (7), proxy-connection (16), transfer-encoding (17), access-control-* (15 and more).
    // Content-Type and Content-Length, in nearly every answer, are not lowercased.
    if ((n === 10 || n === 7 || n >= 15) && (first === 99 /* c */ || first === 107 /* k */ || first === 116 /* t */ || first === 97 /* a */ || first === 112 /* p */ || first === 117 /* u */)) {
      const lower = name.toLowerCase()
      if (lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding' || lower === 'proxy-connection') continue
      if (lower === 'upgrade' && !upgrade) continue
      if (lower.startsWith('access-control-')) cors = true
    }
    out.push(name, raw[i + 1]!.toString('latin1'))
  }
  out.push('x-plane-backend-id', backendId)
  // As Plane: CORS headers only when the backend set none itself.
  if (!cors) for (const field of CORS) out.push(field)
  return out
}

const CURRENT = Symbol('exchange')
const WAITING = Symbol('waiting')
/** A client connection, the exchange it has with a backend (one at a time, see onRequest) and how many requests wait their turn. */
type ClientSocket = Socket & { [CURRENT]?: { closed(): void } | undefined; [WAITING]?: number }

/** One listener per client connection, not one per request: the client went away, so does its exchange. */
function onClientClose(this: Socket): void {
  ;(this as ClientSocket)[CURRENT]?.closed()
}

/** The proxy's request and upgrade handlers, plus `close()` that ends every pool and tunnel. */
export function createProxy(registry: Registry, hosts: HostCheck, options: ProxyOptions) {
  const pools = new Map<Backend, Pool>()
  const tunnels = new Set<() => void>()
  const report = (text: string) => options.onError?.(text)

  /** The backend's keep-alive pool, made on first use and closed when the backend starts ending. */
  const poolOf = (backend: Backend): Pool => {
    let pool = pools.get(backend)
    if (pool === undefined) {
      const host = backend.host ?? registry.backendHost
      const made = new Pool(`http://${bracket(host)}:${backend.port!}`, {
        // Each client connection has at most one request in flight (see onRequest), so this only
        // bounds what the proxy's two listening servers together could ask of one backend.
        connections: options.connections,
        pipelining: 1,
        // A backend may stream (SSE, long-polls) for as long as it likes: no upstream deadlines.
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      pool = made
      pools.set(backend, made)
      const off = backend.onStatus(() => {
        if (!backend.ending) return
        off()
        pools.delete(backend)
        // In-flight requests finish (the backend has its grace period); the pool takes no more.
        made.close().catch(() => {})
      })
    }
    return pool
  }

  /** Calls `go` once the backend is ready, or `fail` with 410 (it ended) / 504 (it took too long); returns the cancel function. */
  const whenReady = (backend: Backend, go: () => void, fail: (status: 410 | 504) => void): (() => void) => {
    let settled = false
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      off()
      clearTimeout(timer)
      fn()
    }
    const off = backend.onStatus((state) => {
      if (state.status === 'ready') settle(go)
      else if (backend.ending) settle(() => fail(410))
    })
    const timer = setTimeout(() => settle(() => fail(504)), options.holdMs)
    return () => settle(() => {})
  }

  /** Checks Host and the token (which ends at `end`, see tokenEnd): the grant, or undefined once `to` is answered. */
  const route = (req: IncomingMessage, to: Answer, end: number): Grant | undefined => {
    const host = hostOf(req.rawHeaders)
    if (host === null) return void fail(to, 400, 'BadRequest', 'more than one Host header')
    if (!hosts.allows(host)) return void fail(to, 403, 'InvalidHost', 'this Host is not allowed')
    const grant = end === 1 ? undefined : registry.grant(req.url!.slice(1, end))
    if (!grant || grant.backend.ending) return void fail(to, 410, 'Gone', 'unknown or expired connection token')
    return grant
  }

  /** Holds a request until its backend is ready, then runs `go`; the hold ends early when the client leaves. */
  const hold = (backend: Backend, client: Socket, to: Answer, go: () => void): void => {
    const cancel = whenReady(
      backend,
      () => {
        client.off('close', cancel)
        go()
      },
      (status) => {
        client.off('close', cancel)
        if (status === 410) fail(to, 410, 'Gone', 'the backend ended before it was ready')
        else fail(to, 504, 'GatewayTimeout', 'the backend was not ready in time')
      },
    )
    client.once('close', cancel)
  }

  /** One proxied request: the undici handler that relays the backend's answer to `res`. */
  class Exchange implements Dispatcher.DispatchHandler {
    readonly res: ServerResponse
    readonly backend: Backend
    readonly socket: ClientSocket
    abort: ((error: Error) => void) | undefined
    resume: (() => void) | undefined
    done = false
    draining = false

    constructor(res: ServerResponse, socket: ClientSocket, backend: Backend) {
      this.res = res
      this.socket = socket
      this.backend = backend
      registry.begin(backend)
      socket[CURRENT] = this
    }

    /** The client went away, or the answer is complete: stop the upstream request if it still runs. */
    closed(): void {
      if (!this.done) this.abort?.(new Error('client closed'))
      this.#finish()
    }

    #finish(): void {
      if (this.done) return
      this.done = true
      if (this.socket[CURRENT] === this) this.socket[CURRENT] = undefined
      registry.end(this.backend)
    }

    onConnect(abort: (error?: Error) => void): void {
      if (this.done) return abort(new Error('client closed'))
      this.abort = abort
    }

    onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
      if (status < 200) return true // interim answers (103) are not passed on
      this.resume = resume
      this.res.writeHead(status, statusText || undefined, responseHeaders(raw, this.backend.id, false))
      return true
    }

    onData(chunk: Buffer): boolean {
      if (this.res.write(chunk)) return true
      // The client is slow: the backend's socket waits until it has taken this chunk.
      if (!this.draining) {
        this.draining = true
        this.res.once('drain', () => {
          this.draining = false
          this.resume?.()
        })
      }
      return false
    }

    onComplete(trailers: string[] | Buffer[] | null): void {
      if (trailers !== null && trailers.length > 0) {
        const pairs: [string, string][] = []
        for (let i = 0; i < trailers.length; i += 2) pairs.push([trailers[i]!.toString('latin1'), trailers[i + 1]!.toString('latin1')])
        this.res.addTrailers(pairs)
      }
      this.#finish()
      this.res.end()
    }

    onError(error: Error): void {
      const wasDone = this.done
      this.#finish()
      if (wasDone) return
      report(`proxy: ${this.backend.id}: ${(error as NodeJS.ErrnoException).code ?? error.message}`)
      // Nothing answered yet: 502. Mid-answer: cut the client off, so that it sees the answer is incomplete.
      if (!this.res.headersSent) sendError(this.res, 502, 'BadGateway', 'the backend did not answer')
      else this.res.destroy()
    }
  }

  /** Sends a request on to its backend (the hot path: no closure is made per request). */
  const forward = (req: IncomingMessage, res: ServerResponse, backend: Backend, path: string, head: UpstreamHead): void => {
    // A held request whose client went away (or ended mid-body) is dropped before it reaches the backend.
    const socket = res.socket
    if (req.destroyed || res.destroyed || socket === null || socket.destroyed) return
    if (backend.ending) return fail(res, 410, 'Gone', 'the backend is terminating')
    poolOf(backend).dispatch({ method: req.method!, path, headers: head.headers, body: head.body ? req : null }, new Exchange(res, socket, backend))
  }

  /**
   * A request, taken in its turn: node:http emits every pipelined request of a connection at once,
   * but gives each response the connection only once the one before it is written. A request is
   * served then, so one client connection has one request at a time with the backend (and at most
   * one hold). Without this, a single pipelining connection could open any number of backend
   * connections, past `proxyMaxConnections`. A connection that closes first takes its waiting
   * requests with it; one with more than {@link MAX_WAITING} waiting is closed (they are held in memory).
   */
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (res.socket !== null) return serve(req, res)
    const socket = req.socket as ClientSocket
    const waiting = (socket[WAITING] ?? 0) + 1
    socket[WAITING] = waiting
    if (waiting > MAX_WAITING) return void socket.destroy()
    res.once('socket', () => {
      socket[WAITING]!--
      serve(req, res)
    })
  }

  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url!
    const end = tokenEnd(url)
    const grant = route(req, res, end)
    if (grant === undefined) return
    const head = upstreamHead(req.rawHeaders, grant, url, req.socket.remoteAddress ?? '', false)
    if (head === 431) return fail(res, 431, 'HeaderFieldsTooLarge', 'the request has more header fields than a backend reads')
    const path = pathAfter(url, end)
    const backend = grant.backend
    if (backend.status === 'ready') forward(req, res, backend, path, head)
    else hold(backend, req.socket, res, () => forward(req, res, backend, path, head))
  }

  const onUpgrade = (req: IncomingMessage, client: Socket, early: Buffer): void => {
    client.on('error', () => client.destroy())
    const url = req.url!
    const end = tokenEnd(url)
    const grant = route(req, client, end)
    if (grant === undefined) return
    const head = upstreamHead(req.rawHeaders, grant, url, client.remoteAddress ?? '', true)
    if (head === 431) return fail(client, 431, 'HeaderFieldsTooLarge', 'the request has more header fields than a backend reads')
    const path = pathAfter(url, end)
    const backend = grant.backend
    // Until the tunnel is up, the client is read (so that its going away is noticed, even while held)
    // and what it sends is kept, bounded, for the backend.
    const pending: Buffer[] = early.length > 0 ? [early] : []
    let pendingBytes = early.length
    const onPendingData = (chunk: Buffer) => {
      pending.push(chunk)
      pendingBytes += chunk.length
      if (pendingBytes > MAX_EARLY) client.destroy()
    }
    const onPendingEnd = () => client.destroy()
    client.on('data', onPendingData)
    client.on('end', onPendingEnd)
    const send = () => {
      if (client.destroyed) return
      if (backend.ending) return fail(client, 410, 'Gone', 'the backend is terminating')
      registry.begin(backend)
      let counted = true
      const uncount = () => {
        if (!counted) return
        counted = false
        registry.end(backend)
      }
      const upstream = httpRequest({
        host: backend.host ?? registry.backendHost,
        port: backend.port!,
        method: req.method,
        path,
        headers: head.headers,
        agent: false,
      })
      const gone = () => upstream.destroy()
      client.once('close', gone)
      let tunneled = false
      // However the exchange ends before a tunnel (an error, the client gone), it stops counting.
      upstream.on('close', () => {
        if (!tunneled) uncount()
      })
      upstream.on('upgrade', (response: IncomingMessage, socket: Socket, rest: Buffer) => {
        tunneled = true
        client.off('close', gone)
        if (client.destroyed) {
          socket.destroy()
          return uncount()
        }
        let text = `HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}\r\n`
        const fields = responseHeaders(response.rawHeaders, backend.id, true)
        for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`
        client.write(`${text}connection: upgrade\r\n\r\n`, 'latin1')
        if (rest.length > 0) client.write(rest)
        client.off('data', onPendingData)
        client.off('end', onPendingEnd)
        for (const chunk of pending) socket.write(chunk)
        const close = tunnel(client, socket, () => {
          tunnels.delete(close)
          uncount()
        })
        tunnels.add(close)
      })
      upstream.on('response', (response: IncomingMessage) => {
        // The backend refused the upgrade: its answer goes to the client, and the connection closes.
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          chunks.push(chunk)
          // Larger than a refusal should be: cut off rather than buffered or passed on cut.
          if (size > MAX_REFUSAL_BODY) {
            response.destroy()
            client.destroy()
          }
        })
        response.on('end', () => {
          client.off('close', gone)
          uncount()
          const body = Buffer.concat(chunks)
          let text = `HTTP/1.1 ${response.statusCode!} ${response.statusMessage ?? ''}\r\n`
          const fields = responseHeaders(response.rawHeaders, backend.id, false)
          for (let i = 0; i < fields.length; i += 2) {
            if (fields[i]!.toLowerCase() !== 'content-length') text += `${fields[i]}: ${fields[i + 1]}\r\n`
          }
          if (client.writable) client.end(Buffer.concat([Buffer.from(`${text}content-length: ${body.length}\r\nconnection: close\r\n\r\n`, 'latin1'), body]))
        })
        response.on('error', () => client.destroy())
      })
      upstream.on('error', (error: NodeJS.ErrnoException) => {
        client.off('close', gone)
        uncount()
        if (client.destroyed) return
        report(`proxy: ${backend.id}: ${error.code ?? error.message}`)
        fail(client, 502, 'BadGateway', 'the backend did not answer')
      })
      upstream.end()
    }
    if (backend.status === 'ready') send()
    else hold(backend, client, client, send)
  }

  /** CONNECT is not a request a backend can answer. */
  const onConnect = (_req: IncomingMessage, client: Socket): void => {
    client.on('error', () => client.destroy())
    endSocket(client, 400, 'BadRequest', 'CONNECT is not supported')
  }

  /** Serves `server` (made by {@link createProxyServer}). */
  const attach = (server: Server): void => {
    server.on('connection', (socket: Socket) => socket.on('close', onClientClose))
    server.on('request', onRequest)
    server.on('upgrade', onUpgrade)
    server.on('connect', onConnect)
  }

  /** Ends every tunnel and every backend pool. */
  const close = () => {
    for (const end of [...tunnels]) end()
    tunnels.clear()
    for (const pool of pools.values()) pool.destroy().catch(() => {})
    pools.clear()
  }

  return { attach, close }
}
