/**
 * The HTTP API of the local server: the Jamsocket v2 routes (connect, status, status stream,
 * terminate), plus `ready_url` (a long-poll), backend info, the running list and the log stream.
 * Account, service and the Authorization header are accepted as given (dev mode has no accounts).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BackendState, ConnectResponse } from '../wire.js'
import { parseConnectInput } from './connect-request.js'
import { isDashboardPath, serveDashboard } from './dashboard.js'
import { createPlaneHandler } from './plane-api.js'
import type { ResolvedDevOptions } from './options.js'
import type { Backend, Registry } from './registry.js'
import { ApiProblem, CORS_HEADERS, decodeSegment, type HostCheck, originHost, readBody, sendError, sendJson } from './respond.js'
import { streamLogs, streamStatus } from './sse.js'

/** Where the API and proxy are reached, as put into connect responses. */
export interface PublicUrls {
  /** The API base for this request (no trailing slash). */
  api(req: IncomingMessage): string
  /** The proxy base for this request (no trailing slash). */
  proxy(req: IncomingMessage): string
}

const PREFLIGHT_HEADERS = {
  ...CORS_HEADERS,
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'content-type, last-event-id, cache-control',
  'access-control-max-age': '600',
}

const digest = (text: string) => createHash('sha256').update(text).digest()

/** True when `header` is `Bearer <token>` (compared in constant time). */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return match !== null && timingSafeEqual(digest(match[1]!), expected)
}

/** The request handler of the API server: the v2 routes, and Plane's (`/ctrl`, `/pub`) from the same registry. */
export function createApiHandler(registry: Registry, options: ResolvedDevOptions, hosts: HostCheck, urls: PublicUrls) {
  const backendOr404 = (res: ServerResponse, id: string | undefined, cors: boolean): Backend | undefined => {
    const backend = id === undefined ? undefined : registry.get(id)
    if (!backend) sendError(res, 404, 'BackendNotFound', 'no backend with this id', cors ? CORS_HEADERS : undefined)
    return backend
  }

  const connect = async (req: IncomingMessage, res: ServerResponse, account: string, service: string, environment: string | undefined) => {
    const input = parseConnectInput(await readBody(req, options.maxBodyBytes), options)
    const { backend, token, spawned } = registry.connect(input, { account, service, environment })
    const api = urls.api(req)
    const body: ConnectResponse = {
      backend_id: backend.id,
      spawned,
      status: spawned ? 'scheduled' : backend.status,
      token,
      url: `${urls.proxy(req)}/${token}/`,
      secret_token: backend.secretToken,
      status_url: `${api}/v2/backend/${backend.id}/status`,
      ready_url: `${api}/v2/backend/${backend.id}/ready`,
    }
    sendJson(res, 200, body)
  }

  const terminate = async (req: IncomingMessage, res: ServerResponse, backend: Backend) => {
    const text = await readBody(req, options.maxBodyBytes)
    let hard = false
    if (text.trim() !== '') {
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        throw new ApiProblem(400, 'InvalidRequest', 'Failed to parse the request body as JSON')
      }
      const value = (body as { hard?: unknown } | null)?.hard
      if (value !== undefined && value !== null && typeof value !== 'boolean') throw new ApiProblem(400, 'InvalidRequest', 'hard must be a boolean')
      hard = value === true
    }
    if (!registry.terminate(backend, hard, 'external')) throw new ApiProblem(409, 'BackendNotRunning', 'the backend has already terminated')
    sendJson(res, 200, { status: 'ok' })
  }

  // A long-poll: 200 once ready, 410 once it ended first, 202 (ask again) after `readyWaitMs`.
  const ready = (req: IncomingMessage, res: ServerResponse, backend: Backend) => {
    const answer = (state: BackendState) => {
      const code = state.status === 'ready' ? 200 : backend.ending ? 410 : 202
      sendJson(res, code, state, CORS_HEADERS)
    }
    if (backend.status === 'ready' || backend.ending) return answer(backend.state)
    const done = (state: BackendState) => {
      cleanup()
      answer(state)
    }
    const off = backend.onStatus((state) => {
      if (state.status === 'ready' || backend.ending) done(state)
    })
    const timer = setTimeout(() => done(backend.state), options.readyWaitMs)
    const cleanup = () => {
      off()
      clearTimeout(timer)
      res.off('close', cleanup)
    }
    res.on('close', cleanup)
  }

  const tokenDigest = options.apiToken === undefined ? undefined : digest(options.apiToken)
  // Plane's /ctrl routes want the same token (as a controller behind --forward-auth).
  const plane = createPlaneHandler(registry, options, hosts, urls, (req) => tokenDigest === undefined || bearerMatches(req.headers.authorization, tokenDigest))

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    const parts = (query === -1 ? url : url.slice(0, query)).split('/')
    // parts[0] is '' (the path starts with '/')
    const method = req.method ?? 'GET'
    const action = parts[2] === 'backend' ? parts.slice(4).join('/') : undefined
    const publicRoute = action === 'status' || action === 'status/stream' || action === 'ready'
    if (method === 'OPTIONS') {
      // Only the routes a browser may call (no token) are offered to other origins.
      res.writeHead(204, publicRoute ? PREFLIGHT_HEADERS : undefined)
      res.end()
      return
    }
    // A server that spawns processes must not take orders from web pages: a page on any site can
    // POST a "simple" cross-origin request (no preflight) to localhost. Browsers always send Origin
    // then; server-side clients do not. Only the public routes answer a foreign origin.
    const origin = req.headers.origin
    if (!publicRoute && origin !== undefined && !hosts.allows(originHost(origin))) {
      return sendError(res, 403, 'ForbiddenOrigin', 'requests from web pages are refused here (only status, status/stream and ready are public)')
    }
    // Reachable beyond this machine, the API runs code for whoever calls it: it wants its token.
    // The dashboard too (a browser page sends no bearer token, so it is refused there).
    if (!publicRoute && tokenDigest !== undefined && !bearerMatches(req.headers.authorization, tokenDigest)) {
      return sendError(res, 401, 'Unauthorized', 'this dev server requires its API token (Authorization: Bearer <token>)')
    }
    const path = query === -1 ? url : url.slice(0, query)
    if (isDashboardPath(path)) return serveDashboard(req, res, path, registry, options.keepAliveMs)
    if (parts[1] !== 'v2') return sendError(res, 404, 'NotFound', 'no such route')
    if (parts[2] === 'service' && (parts.length === 6 || parts.length === 7) && parts[parts.length - 1] === 'connect') {
      if (method !== 'POST') return sendError(res, 405, 'MethodNotAllowed', 'use POST')
      const account = decodeSegment(parts[3])
      const service = decodeSegment(parts[4])
      const environment = parts.length === 7 ? decodeSegment(parts[5]) : undefined
      if (account === undefined || service === undefined || (parts.length === 7 && environment === undefined)) {
        return sendError(res, 400, 'InvalidRequest', 'bad account, service or environment in the path')
      }
      return connect(req, res, account, service, environment)
    }
    if (parts[2] === 'account' && parts.length === 5 && parts[4] === 'backends') {
      if (method !== 'GET') return sendError(res, 405, 'MethodNotAllowed', 'use GET')
      return sendJson(res, 200, registry.running())
    }
    if (parts[2] !== 'backend' || parts.length < 4 || parts.length > 6) return sendError(res, 404, 'NotFound', 'no such route')
    const id = decodeSegment(parts[3])
    const expected = action === 'terminate' ? 'POST' : 'GET'
    if (action === undefined || !['', 'status', 'status/stream', 'ready', 'terminate', 'logs/stream'].includes(action)) {
      return sendError(res, 404, 'NotFound', 'no such route')
    }
    if (method !== expected && !(method === 'HEAD' && expected === 'GET')) {
      return sendError(res, 405, 'MethodNotAllowed', `use ${expected}`, publicRoute ? CORS_HEADERS : undefined)
    }
    const backend = backendOr404(res, id, publicRoute)
    if (!backend) return
    if (method === 'HEAD' && action.endsWith('/stream')) {
      // The headers of the stream, without a stream that would hold the connection open.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...CORS_HEADERS })
      res.end()
      return
    }
    switch (action) {
      case '':
        return sendJson(res, 200, backend.info())
      case 'status':
        return sendJson(res, 200, backend.state, CORS_HEADERS)
      case 'status/stream':
        return streamStatus(req, res, backend, options.keepAliveMs)
      case 'ready':
        return ready(req, res, backend)
      case 'terminate':
        return terminate(req, res, backend)
      default:
        return streamLogs(req, res, backend, options.keepAliveMs)
    }
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    if (!hosts.allows(req.headers.host)) {
      sendError(res, 403, 'InvalidHost', 'this Host is not allowed (DNS rebinding protection; see allowedHosts)')
      return
    }
    if (plane.handles(req.url)) return plane.handle(req, res)
    route(req, res).catch((error: unknown) => {
      if (error instanceof ApiProblem) {
        // After a 413 the rest of the body is not read: close the connection rather than drain it.
        sendError(res, error.status, error.code, error.message, error.status === 413 ? { connection: 'close' } : undefined)
        if (error.status === 413) res.on('finish', () => req.socket.destroySoon())
      } else {
        registry.message('error', `API error: ${(error as Error)?.message ?? String(error)}`)
        if (!res.headersSent) sendError(res, 500, 'InternalError', 'internal error')
        else res.destroy()
      }
    })
  }
}
