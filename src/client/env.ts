/**
 * Where the client talks to and as whom: the hosted/dev URL selection and `fromEnv()` exactly as
 * `@jamsocket/server` does them (same constants, same error texts), plus a browser check.
 */
import { JamsocketError } from '../errors.js'
import { describe, type JamsocketInitOptions, type JamsocketPlaneInitOptions } from './options.js'
import { checkHeaderToken } from './validate.js'
import { planeTarget, type Target, v2Target } from './targets/index.js'

/** The hosted API. */
export const JAMSOCKET_API = 'https://api.jamsocket.com'
/** The dev server's default port. */
export const JAMSOCKET_DEV_PORT = 8080


/** As upstream: an integer, else `Jamsocket dev port must be an integer, got {typeof}`. */
export function validatePort(port: unknown): number {
  if (!Number.isInteger(port)) throw new TypeError(`Jamsocket dev port must be an integer, got ${typeof port}`)
  if ((port as number) < 0 || (port as number) > 65_535) {
    throw new RangeError(`Jamsocket dev port must be from 1 to 65535, got ${port as number}`)
  }
  return port as number
}

function requireString(init: Record<string, unknown>, field: 'account' | 'token' | 'service'): string {
  const value = init[field]
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(
      `Jamsocket: ${field} must be a non-empty string, got ${value === '' ? 'an empty string' : describe(value)}` +
        ' (pass { account, token, service } or { dev: true })',
    )
  }
  if (field === 'token') checkHeaderToken(value)
  return value
}

function normaliseApiUrl(value: unknown): string {
  if (value === undefined || value === '' || value === null) return JAMSOCKET_API
  if (typeof value !== 'string') throw new TypeError(`Jamsocket: apiUrl must be a string, got ${describe(value)}`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError('Jamsocket: apiUrl must be an absolute http(s) URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`Jamsocket: apiUrl must be an http(s) URL, got ${url.protocol}`)
  }
  // Credentials, a query or a fragment would end up in every request URL (and logs). A bare `?` or
  // `#` parses as an empty search/hash, yet would still end every request path.
  if (url.username || url.password || url.search || url.hash || /[?#]/.test(value)) {
    throw new TypeError('Jamsocket: apiUrl must not contain credentials, a query or a fragment')
  }
  return value.replace(/\/+$/, '')
}

/** Resolves the first constructor argument. Throws TypeError/RangeError with a short message. */
export function resolveTarget(init: JamsocketInitOptions): Target {
  if (typeof init !== 'object' || init === null || Array.isArray(init)) {
    throw new TypeError(`Jamsocket: expected { account, token, service } or { dev: true }, got ${describe(init)}`)
  }
  if (init.dev === true) {
    // `port: 0` (falsy) means the default, as upstream.
    const port = init.port ? validatePort(init.port) : JAMSOCKET_DEV_PORT
    return v2Target({ apiUrl: `http://localhost:${port}`, account: '-', service: '-', token: '-', dev: true })
  }
  if ('plane' in init && init.plane !== undefined) return planeTarget(init)
  const raw = init as unknown as Record<string, unknown>
  return v2Target({
    account: requireString(raw, 'account'),
    token: requireString(raw, 'token'),
    service: requireString(raw, 'service'),
    apiUrl: normaliseApiUrl(raw.apiUrl),
    dev: false,
  })
}

/** The environment variables `fromEnv()` reads. */
export type JamsocketEnv = Record<string, string | undefined>

/**
 * Reads `JAMSOCKET_DEV`, `JAMSOCKET_DEV_PORT`, `JAMSOCKET_ACCOUNT`, `JAMSOCKET_TOKEN`,
 * `JAMSOCKET_SERVICE` and `JAMSOCKET_API_URL`, with upstream's rules and error text, and the
 * `PLANE_*` variables. Precedence: `JAMSOCKET_DEV=true` first (the local server), then
 * `PLANE_CONTROLLER_URL` (a Plane cluster; `JAMSOCKET_ACCOUNT`/`_TOKEN`/`_SERVICE` are then ignored),
 * then the hosted credentials.
 */
export function initFromEnv(env: JamsocketEnv): JamsocketInitOptions {
  if (typeof env !== 'object' || env === null) {
    throw new TypeError(`Jamsocket.fromEnv(): env must be an object, got ${describe(env)}`)
  }
  if (env.JAMSOCKET_DEV === 'true') {
    // Unset or empty (`JAMSOCKET_DEV_PORT=` in an env file): the default port.
    const raw: unknown = env.JAMSOCKET_DEV_PORT
    const port = typeof raw === 'string' ? raw.trim() : ''
    if (!port) return { dev: true }
    if (!/^\d+$/.test(port)) {
      throw new TypeError(`Jamsocket dev port must be an integer, got ${JSON.stringify(port.slice(0, 20))} (from JAMSOCKET_DEV_PORT)`)
    }
    return { dev: true, port: validatePort(Number(port)) }
  }
  if (env.PLANE_CONTROLLER_URL) return planeFromEnv(env)
  const { JAMSOCKET_ACCOUNT: account, JAMSOCKET_TOKEN: token, JAMSOCKET_SERVICE: service } = env
  if (!account || !token || !service) {
    throw new Error(
      'Jamsocket.fromEnv(): JAMSOCKET_ACCOUNT, JAMSOCKET_TOKEN, and JAMSOCKET_SERVICE must be provided in the environment',
    )
  }
  const apiUrl = env.JAMSOCKET_API_URL
  return apiUrl ? { account, token, service, apiUrl } : { account, token, service }
}

/**
 * `PLANE_CONTROLLER_URL` (set: this is a Plane target), `PLANE_IMAGE` (required with it), and the
 * optional `PLANE_CLUSTER`, `PLANE_POOL`, `PLANE_TOKEN`. An empty variable counts as unset.
 */
function planeFromEnv(env: JamsocketEnv): JamsocketPlaneInitOptions {
  const image = env.PLANE_IMAGE
  if (!image) throw new Error('Jamsocket.fromEnv(): PLANE_IMAGE must be provided in the environment with PLANE_CONTROLLER_URL')
  const init: JamsocketPlaneInitOptions = { plane: env.PLANE_CONTROLLER_URL!, image }
  if (env.PLANE_CLUSTER) init.cluster = env.PLANE_CLUSTER
  // An empty pool is the default pool, as unset.
  if (env.PLANE_POOL) init.pool = env.PLANE_POOL
  if (env.PLANE_TOKEN) init.token = env.PLANE_TOKEN
  return init
}

/** The process environment, or an empty one where there is no `process` (browsers, some edges). */
export function processEnv(): JamsocketEnv {
  return (globalThis as { process?: { env?: JamsocketEnv } }).process?.env ?? {}
}

/**
 * True in a browser page (also Node with a DOM shim such as jsdom, where tokens leak into client
 * bundles by accident) or a browser worker.
 */
export function isBrowserLike(): boolean {
  const g = globalThis as Record<string, unknown>
  if (typeof g.window !== 'undefined' && typeof g.document !== 'undefined') return true
  return typeof g.WorkerGlobalScope !== 'undefined' && typeof g.importScripts === 'function'
}

/** Throws unless the caller opted in: the client holds the account token. */
export function guardBrowser(allow: boolean): void {
  if (!allow && isBrowserLike()) {
    throw new JamsocketError(
      'Jamsocket: refusing to run in a browser, where the account token would be exposed to every visitor. ' +
        'Create the client on a server and pass the ConnectResponse to the browser (new BackendHandle(connectResponse)); ' +
        'set dangerouslyAllowBrowser: true only for trusted local tools.',
    )
  }
}
