/**
 * A Plane controller (github.com/jamsocket/plane, 0.4 and 0.5): `POST /ctrl/connect` with Plane's
 * own body, `GET /pub/b/{id}/status`, `POST /ctrl/b/{id}/{soft,hard}-terminate` → `null`. The
 * same `ConnectRequest` as on v2 is mapped to Plane's shape here, and whatever Plane would answer
 * 422 to (a null where it takes none, a fraction where it takes an integer) is refused up front.
 */
import type { ConnectRequest, PlaneConnectRequest, PlaneExecutable, PlaneSpawnConfig, ResourceLimits, SpawnConfig, TerminateResponse } from '../../wire.js'
import { describe, type JamsocketPlaneInitOptions } from '../options.js'
import type { Call } from '../request.js'
import { checkHeaderToken, connectBody } from '../validate.js'
import type { JamsocketSummary, Target } from './target.js'

/** The largest value of Plane's `i32` limits (`max_idle_seconds`, `lifetime_limit_seconds`). */
const PLANE_INT_MAX = 2 ** 31 - 1

// Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
const DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?'
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
const IMAGE_RE = new RegExp(`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`)
const TAG_RE = new RegExp(`^${TAG}$`)

/**
 * `image` with its tag replaced by `tag` (a digest is dropped: it pins the old tag). The tag is the
 * part after the last `:` of the last path component, so a registry port (`localhost:5000/editor`)
 * is not mistaken for one.
 */
export function withImageTag(image: string, tag: string): string {
  if (!TAG_RE.test(tag)) {
    throw new TypeError('connect(): request.spawn.tag must be an image tag (letters, digits, _ . -, at most 128, not starting with . or -)')
  }
  const at = image.indexOf('@')
  const name = at === -1 ? image : image.slice(0, at)
  const colon = name.lastIndexOf(':')
  const repository = colon > name.lastIndexOf('/') ? name.slice(0, colon) : name
  return `${repository}:${tag}`
}

function fail(path: string, expected: string, value: unknown): never {
  throw new TypeError(`connect(): ${path} must be ${expected} for Plane, got ${describe(value)}`)
}

function integer(path: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value > max) fail(path, `a whole number from 0 to ${max}`, value)
  return value
}

// Plane's ResourceLimits: u64 microseconds / seconds, a u8 percent, i64 bytes.
const LIMIT_MAX: Record<keyof ResourceLimits, number> = {
  cpu_period: Number.MAX_SAFE_INTEGER,
  cpu_period_percent: 255,
  cpu_time_limit: Number.MAX_SAFE_INTEGER,
  memory_limit_bytes: Number.MAX_SAFE_INTEGER,
  disk_limit_bytes: Number.MAX_SAFE_INTEGER,
}

function resourceLimits(limits: ResourceLimits): ResourceLimits {
  const out: ResourceLimits = {}
  for (const [field, value] of Object.entries(limits) as Array<[keyof ResourceLimits, number | undefined]>) {
    if (value !== undefined) out[field] = integer(`request.spawn.executable.resource_limits.${field}`, value, LIMIT_MAX[field])
  }
  return out
}

function mount(value: string | boolean): string | boolean {
  // The drone binds `mount_base/<path>`: it refuses an absolute path or one that climbs out.
  if (typeof value === 'string' && (value === '' || value.startsWith('/') || value.split(/[\\/]/).includes('..'))) {
    throw new TypeError('connect(): request.spawn.executable.mount must be true or a relative path without ".." for Plane')
  }
  return value
}

interface PlaneConfig {
  image: string
  cluster: string | undefined
  pool: string | undefined
}

function spawnConfig(spawn: SpawnConfig, image: string, config: PlaneConfig): PlaneSpawnConfig {
  // Option fields may be omitted or null; the others (pool, env, resource_limits) must be omitted: null answers 422.
  const out = {} as PlaneSpawnConfig
  const cluster = spawn.cluster ?? config.cluster
  if (cluster === '') fail('request.spawn.cluster', 'a non-empty string', cluster)
  if (cluster !== undefined) out.cluster = cluster
  if (config.pool !== undefined) out.pool = config.pool
  const executable: PlaneExecutable = { image }
  const given = spawn.executable
  if (given?.env !== undefined) executable.env = given.env
  if (given?.resource_limits !== undefined) executable.resource_limits = resourceLimits(given.resource_limits)
  if (given?.mount !== undefined) executable.mount = mount(given.mount)
  out.executable = executable
  if (spawn.lifetime_limit_seconds !== undefined) {
    out.lifetime_limit_seconds = integer('request.spawn.lifetime_limit_seconds', spawn.lifetime_limit_seconds, PLANE_INT_MAX)
  }
  if (spawn.max_idle_seconds !== undefined) {
    out.max_idle_seconds = integer('request.spawn.max_idle_seconds', spawn.max_idle_seconds, PLANE_INT_MAX)
  }
  return out
}

/** Plane's ConnectRequest for a checked `ConnectRequest`. */
function planeBody(request: ConnectRequest | undefined, config: PlaneConfig): string {
  const spawn = request?.spawn
  const image = typeof spawn === 'object' && spawn.tag !== undefined ? withImageTag(config.image, spawn.tag) : config.image
  const body: PlaneConnectRequest = {
    // The key's tag is the image reference, as Plane's CLI does: a key held by another image answers 409 KeyHeld.
    key: request?.key === undefined ? null : { name: request.key, namespace: '', tag: image },
    spawn_config: spawn === false ? null : spawnConfig(typeof spawn === 'object' ? spawn : {}, image, config),
  }
  if (request?.user !== undefined) body.user = request.user
  if (request?.auth !== undefined) body.auth = request.auth
  return connectBody(body)
}

function checkUrl(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`Jamsocket: plane must be the controller's URL, got ${value === '' ? 'an empty string' : describe(value)}`)
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new TypeError('Jamsocket: plane must be an absolute http(s) URL (the controller)')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`Jamsocket: plane must be an http(s) URL, got ${url.protocol}`)
  // A token in the URL (Plane's CLI takes http://TOKEN@host) would be in every request URL and log: pass `token`.
  if (url.username || url.password) throw new TypeError('Jamsocket: plane must not contain credentials; pass { token } instead')
  if (value.includes('?') || value.includes('#')) throw new TypeError('Jamsocket: plane must not contain a query or a fragment')
  return value.replace(/\/+$/, '')
}

function optionalName(field: 'cluster' | 'pool', value: unknown, allowEmpty: boolean): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || (!allowEmpty && value === '')) {
    throw new TypeError(`Jamsocket: ${field} must be a ${allowEmpty ? '' : 'non-empty '}string, got ${value === '' ? 'an empty string' : describe(value)}`)
  }
  return value
}

/** Resolves `{ plane, image, cluster?, pool?, token? }`. Throws TypeError with a short message. */
export function planeTarget(init: JamsocketPlaneInitOptions): Target {
  const raw = init as unknown as Record<string, unknown>
  const controller = checkUrl(raw.plane)
  const image = raw.image
  if (typeof image !== 'string' || !IMAGE_RE.test(image)) {
    throw new TypeError(`Jamsocket: image must be an image reference such as ghcr.io/acme/editor:1.4, got ${typeof image === 'string' ? 'an invalid one' : describe(image)}`)
  }
  const token = raw.token ?? ''
  if (typeof token !== 'string') throw new TypeError(`Jamsocket: token must be a string, got ${describe(token)}`)
  if (token !== '') checkHeaderToken(token)
  for (const field of ['account', 'service'] as const) {
    if (raw[field] !== undefined) throw new TypeError(`Jamsocket: ${field} is not used with plane (Plane has no accounts or services)`)
  }
  const config: PlaneConfig = {
    image,
    cluster: optionalName('cluster', raw.cluster, false),
    pool: optionalName('pool', raw.pool, true),
  }
  // The bearer goes to /ctrl routes only (forward auth guards those); /pub is public and gets none.
  const ctrlHeaders = Object.freeze(
    token ? { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
  ) as Record<string, string>
  const terminateHeaders = Object.freeze(token ? { Authorization: `Bearer ${token}`, Accept: 'application/json' } : { Accept: 'application/json' }) as Record<string, string>
  const pubHeaders = Object.freeze({ Accept: 'application/json' }) as Record<string, string>
  return {
    kind: 'plane',
    apiUrl: controller,
    account: '',
    service: '',
    token,
    connect(request: ConnectRequest | undefined): Call {
      return {
        operation: 'connect()',
        method: 'POST',
        url: `${controller}/ctrl/connect`,
        headers: ctrlHeaders,
        body: planeBody(request, config),
        withToken: token !== '',
        backendRoute: false,
      }
    },
    status(backendId: string): Call {
      return {
        operation: 'status()',
        method: 'GET',
        url: `${controller}/pub/b/${encodeURIComponent(backendId)}/status`,
        headers: pubHeaders,
        withToken: false,
        backendRoute: true,
      }
    },
    terminate(backendId: string, hard: boolean): Call {
      return {
        operation: 'terminate()',
        method: 'POST',
        url: `${controller}/ctrl/b/${encodeURIComponent(backendId)}/${hard ? 'hard' : 'soft'}-terminate`,
        headers: terminateHeaders,
        withToken: token !== '',
        backendRoute: true,
      }
    },
    terminated(): TerminateResponse {
      // Plane answers `null` (axum's `Json(())`); any 2xx means the terminate action was recorded.
      return { status: 'ok' }
    },
    summary(): JamsocketSummary {
      const summary: JamsocketSummary = { apiUrl: controller, account: '', service: '', dev: false, token: token ? '[redacted]' : '', plane: controller, image }
      if (config.cluster !== undefined) summary.cluster = config.cluster
      if (config.pool !== undefined) summary.pool = config.pool
      return summary
    },
  }
}
