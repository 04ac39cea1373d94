/**
 * Plane's controller routes on the local server, answered from the same registry as the v2 API,
 * with Plane 0.5's shapes and status codes: `POST /ctrl/connect`, `POST /ctrl/b/{id}/soft-terminate`
 * and `/hard-terminate` (200 `null`), `GET /ctrl/status`, and the public `GET /pub/b/{id}/status`,
 * `GET /pub/b/{id}/status-stream` (history replay then live, `data: {json}` + `id: <status>`, never
 * closed, as Plane) and `GET /pub/health`, with CORS on `/pub` as Plane's. Errors are Plane's
 * `{id, kind, message}`; what axum's JSON extractor rejects is plain text (415, 400, 422), as there.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  type BackendState,
  type PlaneConnectResponse,
  type PlaneErrorBody,
  type PlaneStatusEntry,
} from '../wire.js'
import type { PublicUrls } from './api.js'
import { isObject, parseConnectInput } from './connect-request.js'
import type { ResolvedDevOptions } from './options.js'
import type { Backend, Registry } from './registry.js'
import { ApiProblem, CORS_HEADERS, decodeSegment, type HostCheck, originHost, randomName, readBody, sendJson } from './respond.js'
import { EventStream, followStatus } from './sse.js'

/** The Plane version whose controller API these routes reproduce (answered by `/ctrl/status`). */
const PLANE_API_VERSION = '0.5.6'

// Plane's messages for the errors its connect answers (controller/connect.rs).
const PLANE_MESSAGES: Record<string, string> = {
  KeyHeld: 'Lock is held but tag does not match.',
  KeyUnheldNoSpawnConfig: 'Lock is unheld but no spawn config was provided.',
}
const NOT_FOUND = 'Backend does not exist'

// tower-http's CorsLayer on /pub: any origin, GET and POST, the content-type header.
const PUB_HEADERS: Readonly<Record<string, string>> = {
  ...CORS_HEADERS,
  vary: 'origin, access-control-request-method, access-control-request-headers',
}
const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  ...PUB_HEADERS,
  'access-control-allow-methods': 'GET,POST',
  'access-control-allow-headers': 'content-type',
}

/** A request axum rejects before the handler runs: plain text, as its extractors answer. */
class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

function sendText(res: ServerResponse, status: number, text: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** An empty answer, as axum's router gives for no route (404) or the wrong method (405 with `allow`). */
function sendEmpty(res: ServerResponse, status: number, headers?: Record<string, string>): void {
  res.writeHead(status, { 'content-length': 0, ...headers })
  res.end()
}

/** Plane's error body. */
function sendPlaneError(res: ServerResponse, status: number, kind: string, message: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body: PlaneErrorBody = { id: randomName(), kind, message }
  sendJson(res, status, body, headers)
}

/** A state as Plane's `BackendStatusStreamEntry`: epoch-ms time, `exit_error` on terminated only. */
function planeEntry(state: BackendState): PlaneStatusEntry {
  const entry: PlaneStatusEntry = { status: state.status } as PlaneStatusEntry
  if ('termination_reason' in state && state.termination_reason) entry.termination_reason = state.termination_reason
  if ('termination_kind' in state && state.termination_kind) entry.termination_kind = state.termination_kind
  if (state.status === 'terminated') entry.exit_error = state.exit_error ?? false
  entry.time = Date.parse(state.time)
  return entry
}

type Json = Record<string, unknown>

function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a sequence'
  if (typeof value === 'object') return 'a map'
  if (typeof value === 'number') return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``
  return typeof value === 'string' ? 'a string' : `${typeof value} \`${String(value)}\``
}

/** serde's complaint about one field, prefixed with its path (as axum reports it). */
function invalid(path: string, value: unknown, expected: string): string {
  return `${path}: invalid type: ${typeName(value)}, expected ${expected}`
}

const I32_MAX = 2 ** 31 - 1

/**
 * Checks a body against Plane's `ConnectRequest` the way serde reads it: what an `Option` takes as
 * null, what a defaulted field must not be null, integers where Plane has them. Returns the first
 * problem, or undefined. The executable is checked as the drone reads it (Plane's controller takes
 * any JSON there and the backend fails at its drone instead: here it is refused up front).
 */
function checkPlaneConnect(body: unknown): string | undefined {
  if (!isObject(body)) return invalid('body', body, 'struct ConnectRequest')
  const { key, spawn_config: spawn, user, auth } = body
  if (key !== undefined && key !== null) {
    if (!isObject(key)) return invalid('key', key, 'struct KeyConfig')
    if (key.name === undefined) return 'key: missing field `name`'
    for (const field of ['name', 'namespace', 'tag']) {
      if ((field === 'name' || key[field] !== undefined) && typeof key[field] !== 'string') return invalid(`key.${field}`, key[field], 'a string')
    }
  }
  if (user !== undefined && user !== null && typeof user !== 'string') return invalid('user', user, 'a string')
  if (auth !== undefined && !isObject(auth)) return invalid('auth', auth, 'a map')
  if (spawn === undefined || spawn === null) return undefined
  if (!isObject(spawn)) return invalid('spawn_config', spawn, 'struct SpawnConfig')
  if (spawn.executable === undefined) return 'spawn_config: missing field `executable`'
  for (const field of ['id', 'cluster', 'subdomain']) {
    if (spawn[field] !== undefined && spawn[field] !== null && typeof spawn[field] !== 'string') return invalid(`spawn_config.${field}`, spawn[field], 'a string')
  }
  if (spawn.pool !== undefined && typeof spawn.pool !== 'string') return invalid('spawn_config.pool', spawn.pool, 'a string')
  if (spawn.use_static_token !== undefined && typeof spawn.use_static_token !== 'boolean') {
    return invalid('spawn_config.use_static_token', spawn.use_static_token, 'a boolean')
  }
  for (const field of ['lifetime_limit_seconds', 'max_idle_seconds']) {
    const value = spawn[field]
    if (value === undefined || value === null) continue
    if (typeof value !== 'number' || !Number.isInteger(value)) return invalid(`spawn_config.${field}`, value, 'i32')
    if (value < -I32_MAX - 1 || value > I32_MAX) return `spawn_config.${field}: invalid value: integer \`${value}\`, expected i32`
  }
  const executable = spawn.executable
  if (!isObject(executable)) return invalid('spawn_config.executable', executable, 'struct DockerExecutorConfig')
  if (executable.image === undefined) return 'spawn_config.executable: missing field `image`'
  if (typeof executable.image !== 'string') return invalid('spawn_config.executable.image', executable.image, 'a string')
  if (executable.env !== undefined && !isObject(executable.env)) return invalid('spawn_config.executable.env', executable.env, 'a map')
  if (executable.resource_limits !== undefined) {
    const limits = executable.resource_limits
    if (!isObject(limits)) return invalid('spawn_config.executable.resource_limits', limits, 'struct ResourceLimits')
    for (const [field, value] of Object.entries(limits)) {
      if (value !== null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
        return invalid(`spawn_config.executable.resource_limits.${field}`, value, 'an unsigned integer')
      }
    }
  }
  const mount = executable.mount
  if (mount !== undefined && mount !== null && typeof mount !== 'boolean' && typeof mount !== 'string') {
    return invalid('spawn_config.executable.mount', mount, 'a boolean or a path')
  }
  return undefined
}

/** True for a Content-Type axum's `Json` extractor takes: `application/json` or `application/*+json`. */
function isJsonType(header: string | undefined): boolean {
  const mime = (header ?? '').split(';', 1)[0]!.trim().toLowerCase()
  return mime === 'application/json' || (mime.startsWith('application/') && mime.endsWith('+json'))
}

/** The handler of the Plane routes; `handles(path)` says whether a request belongs to them. */
export function createPlaneHandler(
  registry: Registry,
  options: ResolvedDevOptions,
  hosts: HostCheck,
  urls: PublicUrls,
  authorized: (req: IncomingMessage) => boolean,
) {
  // The one "drone" of this server: Plane names the drone that spawned a backend.
  const drone = `dr-${randomName()}`

  const connect = async (req: IncomingMessage, res: ServerResponse) => {
    if (!isJsonType(req.headers['content-type'])) throw new Rejection(415, 'Expected request with `Content-Type: application/json`')
    const text = await readBody(req, options.maxBodyBytes)
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (error) {
      throw new Rejection(400, `Failed to parse the request body as JSON: ${(error as Error).message}`)
    }
    const problem = checkPlaneConnect(body)
    if (problem !== undefined) throw new Rejection(422, `Failed to deserialize the JSON body into the target type: ${problem}`)
    const request = body as Json
    const key = request.key as Json | null | undefined
    const spawn = request.spawn_config as Json | null | undefined
    // What only a Plane cluster does is refused rather than silently ignored.
    if (key && typeof key.namespace === 'string' && key.namespace !== '') throw new ApiProblem(400, 'Other', 'key namespaces are not supported by the local server')
    if (spawn?.use_static_token === true) throw new ApiProblem(400, 'Other', 'static tokens are not supported by the local server')
    if (typeof spawn?.subdomain === 'string') throw new ApiProblem(400, 'Other', 'subdomains are not supported by the local server')
    if (typeof spawn?.id === 'string') throw new ApiProblem(400, 'Other', 'custom backend ids are not supported by the local server')
    const executable = (spawn?.executable ?? {}) as Json
    // The same request in the v2 shape, through the same validation as the v2 route.
    const v2: Json = { spawn: false }
    if (key) v2.key = key.name
    if (spawn) {
      const config: Json = {}
      const given: Json = {}
      for (const field of ['env', 'mount', 'resource_limits']) if (executable[field] !== undefined && executable[field] !== null) given[field] = executable[field]
      config.executable = given
      for (const field of ['lifetime_limit_seconds', 'max_idle_seconds']) if (spawn[field] !== undefined && spawn[field] !== null) config[field] = spawn[field]
      v2.spawn = config
    }
    if (request.user !== undefined && request.user !== null) v2.user = request.user
    if (request.auth !== undefined) v2.auth = request.auth
    // A Plane key's tag is always compared ('' by default), with or without a spawn config.
    const input = { ...parseConnectInput(JSON.stringify(v2), options), tag: typeof key?.tag === 'string' ? key.tag : '' }
    const image = spawn ? (executable.image as string) : undefined
    const { backend, token, spawned } = registry.connect(input, { account: '-', service: '-', environment: undefined, image })
    const answer: PlaneConnectResponse = {
      backend_id: backend.id,
      spawned,
      status: spawned ? 'scheduled' : backend.status,
      token,
      url: `${urls.proxy(req)}/${token}/`,
      subdomain: null,
      secret_token: backend.secretToken,
      status_url: `${urls.api(req)}/pub/b/${backend.id}/status`,
      drone: spawned ? drone : null,
    }
    sendJson(res, 200, answer)
  }

  const statusStream = (req: IncomingMessage, res: ServerResponse, backend: Backend | undefined) => {
    const stream = new EventStream(req, res, options.keepAliveMs, true, true)
    // As Plane: an unknown backend gets 200 and keep-alives only, and the stream is never ended by
    // the server, not even after terminated (clients close it).
    if (backend) followStatus(stream, req, backend, (state) => JSON.stringify(planeEntry(state)), false)
  }

  const pub = (req: IncomingMessage, res: ServerResponse, parts: string[], method: string) => {
    if (method === 'OPTIONS') return sendEmpty(res, 200, PREFLIGHT_HEADERS)
    const get = method === 'GET' || method === 'HEAD'
    if (parts.length === 3 && parts[2] === 'health') {
      if (!get) return sendEmpty(res, 405, { allow: 'GET,HEAD', ...PUB_HEADERS })
      return sendJson(res, 200, { status: 'ok' }, PUB_HEADERS)
    }
    if (parts.length !== 5 || parts[2] !== 'b' || (parts[4] !== 'status' && parts[4] !== 'status-stream') || parts[3] === '') {
      return sendEmpty(res, 404, PUB_HEADERS)
    }
    if (!get) return sendEmpty(res, 405, { allow: 'GET,HEAD', ...PUB_HEADERS })
    const backend = registry.get(decodeSegment(parts[3]) ?? '')
    if (parts[4] === 'status') {
      if (!backend) return sendPlaneError(res, 404, 'NotFound', NOT_FOUND, PUB_HEADERS)
      return sendJson(res, 200, planeEntry(backend.state), PUB_HEADERS)
    }
    if (method === 'HEAD') {
      // The headers of the stream, without a stream that would hold the connection open.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...PUB_HEADERS })
      res.end()
      return
    }
    res.setHeader('vary', PUB_HEADERS.vary!)
    return statusStream(req, res, backend)
  }

  const ctrl = async (req: IncomingMessage, res: ServerResponse, parts: string[], method: string) => {
    // A server that spawns processes takes no orders from web pages (Plane puts /ctrl behind auth).
    const origin = req.headers.origin
    if (origin !== undefined && !hosts.allows(originHost(origin))) {
      return sendText(res, 403, 'requests from web pages are refused on /ctrl (only /pub is public)')
    }
    // Beyond this machine the server wants its API token on /ctrl, as forward auth answers: 401 in plain text.
    if (!authorized(req)) return sendText(res, 401, 'Unauthorized')
    if (parts.length === 3 && parts[2] === 'status') {
      if (method !== 'GET' && method !== 'HEAD') return sendEmpty(res, 405, { allow: 'GET,HEAD' })
      return sendJson(res, 200, { status: 'ok', version: PLANE_API_VERSION, hash: 'local' })
    }
    if (parts.length === 3 && parts[2] === 'connect') {
      if (method !== 'POST') return sendEmpty(res, 405, { allow: 'POST' })
      return connect(req, res)
    }
    if (parts.length === 5 && parts[2] === 'b' && parts[3] !== '' && (parts[4] === 'soft-terminate' || parts[4] === 'hard-terminate')) {
      if (method !== 'POST') return sendEmpty(res, 405, { allow: 'POST' })
      req.resume() // the body is ignored, as Plane does
      const backend = registry.get(decodeSegment(parts[3]) ?? '')
      if (!backend) return sendPlaneError(res, 404, 'NotFound', NOT_FOUND)
      // Plane answers 200 for a backend that already terminated too.
      registry.terminate(backend, parts[4] === 'hard-terminate', 'external')
      return sendJson(res, 200, null)
    }
    return sendEmpty(res, 404)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/'
    const query = url.indexOf('?')
    const parts = (query === -1 ? url : url.slice(0, query)).split('/')
    const method = req.method ?? 'GET'
    if (parts[1] === 'pub') return pub(req, res, parts, method)
    return ctrl(req, res, parts, method)
  }

  return {
    /** True for a path of the Plane routes (`/ctrl…`, `/pub…`). */
    handles(url: string | undefined): boolean {
      return url !== undefined && /^\/(ctrl|pub)(\/|\?|$)/.test(url)
    },
    handle(req: IncomingMessage, res: ServerResponse): void {
      handle(req, res).catch((error: unknown) => {
        const cors = req.url?.startsWith('/pub') ? PUB_HEADERS : undefined
        if (error instanceof Rejection) return sendText(res, error.status, error.message, cors)
        if (error instanceof ApiProblem) {
          if (error.status === 413) {
            // As axum's body limit; the rest of the body is not read: close rather than drain it.
            sendText(res, 413, 'Failed to buffer the request body: length limit exceeded', { connection: 'close' })
            res.on('finish', () => req.socket.destroySoon())
            return
          }
          const kind = error.code in PLANE_MESSAGES || error.code === 'NotFound' ? error.code : 'Other'
          return sendPlaneError(res, error.status, kind, PLANE_MESSAGES[error.code] ?? error.message, cors)
        }
        registry.message('error', `API error: ${(error as Error)?.message ?? String(error)}`)
        sendPlaneError(res, 500, 'Other', 'Internal error.', cors)
      })
    },
  }
}
