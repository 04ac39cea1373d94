/**
 * The proxy (`{proxyUrl}/{token}/…`): finds the backend by the token in the first path segment,
 * strips it, replaces any client `x-verified-*` headers with the server's, holds requests until the
 * backend is ready, passes WebSocket upgrades through as raw sockets, and counts traffic as activity
 * for the idle sweep. Lean on purpose (raw header arrays, one keep-alive agent, piped bodies): it
 * sits on every request a backend gets.
 */
import { Agent, type ClientRequest, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Backend, Grant, Registry } from './registry.js'
import { type HostCheck, sendError } from './respond.js'

/** What the proxy needs besides the registry. */
export interface ProxyOptions {
  holdMs: number
  onError?: ((text: string) => void) | undefined
}

const CORS_RESPONSE = ['Access-Control-Allow-Origin', '*', 'Access-Control-Allow-Methods', '*', 'Access-Control-Allow-Headers', '*, Authorization']

// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the ones the proxy sets.
function dropRequestHeader(lower: string): boolean {
  return (
    lower.startsWith('x-verified-') ||
    lower === 'connection' ||
    lower === 'keep-alive' ||
    lower === 'proxy-connection' ||
    lower === 'x-forwarded-for' ||
    lower === 'x-forwarded-proto'
  )
}

/** Splits `/{token}/rest?q` into the token and the upstream path (`/rest?q`, `/` when empty). */
function splitToken(url: string): [token: string, path: string] {
  let end = 1
  const n = url.length
  while (end < n) {
    const c = url.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */) break
    end++
  }
  const token = url.slice(1, end)
  if (end === n) return [token, '/']
  return [token, url.charCodeAt(end) === 47 ? url.slice(end) : `/${url.slice(end)}`]
}

const PEER = Symbol('peer')

// The client address, read once per connection (remoteAddress is a getpeername() call each time).
function peer(req: IncomingMessage): string {
  const socket = req.socket as IncomingMessage['socket'] & { [PEER]?: string }
  return (socket[PEER] ??= socket.remoteAddress ?? '')
}

function upstreamHeaders(req: IncomingMessage, grant: Grant, upgrade: boolean): string[] {
  const raw = req.rawHeaders
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const first = name.charCodeAt(0) | 32 // ASCII lower-case
    if (first === 120 /* x */ || first === 99 /* c */ || first === 107 /* k */ || first === 112 /* p */) {
      if (dropRequestHeader(name.toLowerCase())) continue
    }
    out.push(name, raw[i + 1]!)
  }
  if (upgrade) out.push('Connection', 'Upgrade')
  if (grant.user !== undefined) out.push('x-verified-username', grant.user)
  out.push(
    'x-verified-user-data',
    grant.userData,
    'x-verified-path',
    req.url!,
    'x-verified-backend',
    grant.backend.id,
    'x-verified-secret',
    grant.backend.secretToken,
    'x-forwarded-for',
    peer(req),
    'x-forwarded-proto',
    'http',
  )
  return out
}

function responseHeaders(raw: string[], backendId: string): string[] {
  const out: string[] = []
  let cors = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const first = name.charCodeAt(0) | 32
    if (first === 99 /* c */ || first === 107 /* k */ || first === 97 /* a */) {
      const lower = name.toLowerCase()
      if (lower === 'connection' || lower === 'keep-alive') continue
      if (lower.startsWith('access-control-')) cors = true
    }
    out.push(name, raw[i + 1]!)
  }
  out.push('x-plane-backend-id', backendId)
  // As Plane: CORS headers only when the backend set none itself.
  if (!cors) out.push(...CORS_RESPONSE)
  return out
}

function rawReply(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) return void socket.destroy()
  const body = JSON.stringify({ error: { status, code: text.replace(/ /g, ''), message: text } })
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}

/** The proxy's request and upgrade handlers, plus `close()` for its connection pool. */
export function createProxy(registry: Registry, hosts: HostCheck, options: ProxyOptions) {
  // One pool of keep-alive connections to all backends: per-request connects would halve throughput.
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 1024, scheduling: 'lifo' })
  const report = (text: string) => {
    try {
      options.onError?.(text)
    } catch {
      // never let reporting break the proxy
    }
  }

  /** Calls `go` once the backend is ready, or `fail` with 410 (it ended) / 504 (it took too long). */
  const whenReady = (backend: Backend, onGone: (fn: () => void) => void, go: () => void, fail: (status: 410 | 504) => void) => {
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
    onGone(() => settle(() => {}))
  }

  const forward = (req: IncomingMessage, res: ServerResponse, grant: Grant, path: string) => {
    const backend = grant.backend
    if (backend.ending) return sendError(res, 410, 'Gone', 'the backend is terminating')
    registry.begin(backend)
    let ended = false
    const finish = () => {
      if (ended) return
      ended = true
      registry.end(backend)
    }
    const upstream: ClientRequest = request({
      host: registry.backendHost,
      port: backend.port,
      method: req.method,
      path,
      headers: upstreamHeaders(req, grant, false) as unknown as Record<string, string>,
      agent,
      setHost: false,
    })
    upstream.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes.rawHeaders, backend.id))
      upRes.pipe(res)
      upRes.on('error', () => res.destroy())
    })
    upstream.on('error', (error) => {
      if (!res.headersSent) sendError(res, 502, 'BadGateway', 'the backend did not answer')
      else res.destroy()
      if (!ended) report(`proxy: ${backend.id}: ${(error as NodeJS.ErrnoException).code ?? error.message}`)
      finish()
    })
    res.on('close', () => {
      // The client went away before the answer was complete: stop the upstream request too.
      if (!res.writableFinished) upstream.destroy()
      finish()
    })
    const length = req.headers['content-length']
    if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) upstream.end()
    else {
      req.on('error', () => upstream.destroy()) // the client aborted mid-body
      req.pipe(upstream)
    }
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (!hosts.allows(req.headers.host)) return sendError(res, 403, 'InvalidHost', 'this Host is not allowed')
    const [token, path] = splitToken(req.url ?? '/')
    const grant = token === '' ? undefined : registry.grant(token)
    if (!grant || grant.backend.ending) return sendError(res, 410, 'Gone', 'unknown or expired connection token')
    if (grant.backend.status === 'ready') return forward(req, res, grant, path)
    whenReady(
      grant.backend,
      (fn) => res.on('close', fn),
      () => forward(req, res, grant, path),
      (status) =>
        status === 410
          ? sendError(res, 410, 'Gone', 'the backend ended before it was ready')
          : sendError(res, 504, 'GatewayTimeout', 'the backend was not ready in time'),
    )
  }

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, grant: Grant, path: string) => {
    const backend = grant.backend
    if (backend.ending || !socket.writable) return rawReply(socket, 410, 'Gone')
    const upstream = request({
      host: registry.backendHost,
      port: backend.port,
      method: req.method,
      path,
      headers: upstreamHeaders(req, grant, true) as unknown as Record<string, string>,
      agent: false,
      setHost: false,
    })
    upstream.on('upgrade', (upRes, upSocket, upHead) => {
      upSocket.on('error', () => socket.destroy())
      if (!socket.writable) return void upSocket.destroy()
      registry.begin(backend)
      let open = true
      const close = () => {
        if (!open) return
        open = false
        socket.destroy()
        upSocket.destroy()
        registry.end(backend)
      }
      socket.on('close', close)
      upSocket.on('close', close)
      socket.on('error', close)
      let head101 = `HTTP/1.1 101 ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`
      const raw = upRes.rawHeaders
      for (let i = 0; i < raw.length; i += 2) head101 += `${raw[i]}: ${raw[i + 1]}\r\n`
      socket.write(`${head101}\r\n`)
      if (upHead.length > 0) socket.write(upHead)
      if (head.length > 0) upSocket.write(head)
      upSocket.setNoDelay(true)
      upSocket.pipe(socket)
      socket.pipe(upSocket)
    })
    upstream.on('response', (upRes) => {
      // The backend refused the upgrade: relay its answer as is.
      let text = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}\r\n`
      const raw = responseHeaders(upRes.rawHeaders, backend.id)
      for (let i = 0; i < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`
      socket.write(`${text}connection: close\r\n\r\n`)
      upRes.pipe(socket)
      upRes.on('error', () => socket.destroy())
    })
    upstream.on('error', () => rawReply(socket, 502, 'Bad Gateway'))
    socket.on('close', () => upstream.destroy())
    upstream.end()
  }

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy())
    if (!hosts.allows(req.headers.host)) return rawReply(socket, 403, 'Forbidden')
    const [token, path] = splitToken(req.url ?? '/')
    const grant = token === '' ? undefined : registry.grant(token)
    if (!grant || grant.backend.ending) return rawReply(socket, 410, 'Gone')
    if (grant.backend.status === 'ready') return upgrade(req, socket, head, grant, path)
    whenReady(
      grant.backend,
      (fn) => socket.on('close', fn),
      () => upgrade(req, socket, head, grant, path),
      (status) => rawReply(socket, status, status === 410 ? 'Gone' : 'Gateway Timeout'),
    )
  }

  return { onRequest, onUpgrade, close: () => agent.destroy() }
}
