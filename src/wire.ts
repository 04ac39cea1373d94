/**
 * The Jamsocket v2 wire contract: the one place its types live, used by the client, the status
 * follower and the local server alike. Imports nothing from `node:*`.
 *
 * Strict in what is sent, lenient in what is read: the `parse*` functions accept `time` as an ISO
 * string or epoch milliseconds (normalised to ISO), explicit `null` optional fields and unknown
 * extra fields (dropped), and throw a {@link ProtocolError} naming the field for what is really
 * malformed.
 */
import { ProtocolError } from './errors.js'

// ---------------------------------------------------------------------------------------------
// Statuses

/** Every status, in lifecycle order. */
export const BACKEND_STATUSES = [
  'scheduled',
  'loading',
  'starting',
  'waiting',
  'ready',
  'terminating',
  'hard-terminating',
  'terminated',
] as const

/** Where a backend is in its lifecycle. Statuses only move forward; any may be skipped. */
export type BackendStatus = (typeof BACKEND_STATUSES)[number]

/** Why a backend is terminating or terminated (serialised without underscores). */
export type TerminationReason = 'swept' | 'external' | 'keyexpired' | 'lost' | 'startuptimeout' | 'internalerror'

/** Whether termination was by SIGTERM (`soft`) or SIGKILL (`hard`). */
export type TerminationKind = 'soft' | 'hard'

export const TERMINATION_REASONS: readonly TerminationReason[] = [
  'swept',
  'external',
  'keyexpired',
  'lost',
  'startuptimeout',
  'internalerror',
]

// Plane's `as_int` ranks: gaps are left on purpose so that statuses can be added between.
const RANKS: Record<BackendStatus, number> = {
  scheduled: 10,
  loading: 20,
  starting: 30,
  waiting: 40,
  ready: 50,
  terminating: 60,
  'hard-terminating': 65,
  terminated: 70,
}

/** The status's rank (Plane's numbers, 10…70): a status comes after another iff its rank is higher. */
export function statusRank(status: BackendStatus): number {
  return RANKS[status]
}

/** True for a value that is one of the {@link BACKEND_STATUSES}. */
export function isBackendStatus(value: unknown): value is BackendStatus {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(RANKS, value)
}

/** True for `terminating`, `hard-terminating` and `terminated`: the backend is going or gone. */
export function isEnding(status: BackendStatus): boolean {
  return RANKS[status] >= RANKS.terminating
}

// ---------------------------------------------------------------------------------------------
// Backend state

/** A state before termination. */
export interface AliveState {
  status: 'scheduled' | 'loading' | 'starting' | 'waiting' | 'ready'
  /** ISO 8601 time the backend entered this status. */
  time: string
}

/** The backend was asked to stop (SIGTERM) or killed (SIGKILL). */
export interface TerminatingState {
  status: 'terminating' | 'hard-terminating'
  time: string
  termination_reason: TerminationReason
  /** Plane includes it on terminating states too. */
  termination_kind?: TerminationKind
}

/** The backend is gone. */
export interface TerminatedState {
  status: 'terminated'
  time: string
  termination_reason?: TerminationReason
  termination_kind?: TerminationKind
  /** True when the process exited with a non-zero code. */
  exit_error?: boolean
}

/** One status of a backend, as `status_url` and its stream carry it. */
export type BackendState = AliveState | TerminatingState | TerminatedState

// ---------------------------------------------------------------------------------------------
// Connect

/** Resource limits for a backend's process. */
export interface ResourceLimits {
  /** CPU period in microseconds. @default 100_000 */
  cpu_period?: number
  /** Share of one CPU per period, in percent (100 = one full CPU). */
  cpu_period_percent?: number
  /** Total CPU time in seconds. */
  cpu_time_limit?: number
  memory_limit_bytes?: number
  disk_limit_bytes?: number
}

/** How the backend's executable is run. */
export interface ExecutableConfig {
  /** A persistent data directory (a sub-path, or `true` for one per key). */
  mount?: string | boolean
  env?: Record<string, string>
  resource_limits?: ResourceLimits
}

/** How a new backend is spawned. */
export interface SpawnConfig {
  tag?: string
  cluster?: string
  lifetime_limit_seconds?: number
  max_idle_seconds?: number
  executable?: ExecutableConfig
}

/** The body of `POST /v2/service/{account}/{service}/connect`. Every field is optional. */
export interface ConnectRequest {
  /** Returns the running backend that holds this key, or spawns one that will. */
  key?: string
  /** A spawn config, or `false` to only ever return an existing backend for `key`. */
  spawn?: boolean | SpawnConfig
  /** Sent to the backend as `x-verified-username`. */
  user?: string
  /** Sent to the backend, JSON-serialised, as `x-verified-user-data`. */
  auth?: Record<string, unknown>
}

/** What connect returns. Holds no account secret: it may be handed to a browser. */
export interface ConnectResponse {
  backend_id: string
  /** True when this call started the backend; false when it joined a running one. */
  spawned: boolean
  status: BackendStatus
  /** The connection token (also the first path segment of `url`). */
  token: string
  /** The backend's URL through the proxy. */
  url: string
  /** Sent to the backend as `x-verified-secret`. */
  secret_token?: string | null
  status_url: string
  /** A URL that answers once the backend is ready; `''` (or `null`, kept as sent) when the server has none. */
  ready_url: string | null
}

// ---------------------------------------------------------------------------------------------
// Other calls

/** The body of `POST /v2/backend/{id}/terminate`. */
export interface TerminateRequest {
  hard: boolean
}

/** The answer to terminate. */
export interface TerminateResponse {
  status: 'ok'
}

/** One entry of {@link BackendInfo.statuses}. */
export interface BackendInfoStatus {
  status: BackendStatus
  time: string
  termination_reason?: TerminationReason
  termination_kind?: TerminationKind
  exit_code?: number
}

/** `GET /v2/backend/{id}`. */
export interface BackendInfo {
  id: string
  created_at: string
  service_name: string
  account_name: string
  cluster_name: string
  image_digest: string
  key?: string
  environment_name?: string
  max_mem_bytes?: number
  statuses: BackendInfoStatus[]
}

/** `GET /v2/account/{account}/backends`. */
export interface RunningBackends {
  running_backends: Array<{
    id: string
    created_at: string
    account_name: string
    service_name: string
    status: { status: BackendStatus; time: string } | null
    key: string | null
  }>
}

/** The hosted API's error body. */
export interface HostedErrorBody {
  error: { status?: number; code?: string; message?: string; id?: string }
}

/** Plane's error body. */
export interface PlaneErrorBody {
  id?: string
  kind?: string
  message?: string
}

// ---------------------------------------------------------------------------------------------
// Plane's controller API (github.com/jamsocket/plane 0.5, `common/src/types`): what the Plane
// target sends and the local server's Plane routes answer. Fields Plane takes no null for are
// optional here and must be left out rather than sent as null.

/** Plane's `KeyConfig`: a backend holds at most one key per (namespace, name). */
export interface PlaneKeyConfig {
  name: string
  /** @default '' */
  namespace?: string
  /** A live key is only returned to a connect with the same tag (else 409 `KeyHeld`). @default '' */
  tag?: string
}

/** Plane's `DockerExecutorConfig` (the drone runs `image`). */
export interface PlaneExecutable {
  image: string
  env?: Record<string, string>
  resource_limits?: ResourceLimits
  mount?: string | boolean | null
  pull_policy?: 'IfNotPresent' | 'Always' | 'Never' | null
}

/** Plane's `SpawnConfig`. `lifetime_limit_seconds` and `max_idle_seconds` are 32-bit integers. */
export interface PlaneSpawnConfig {
  cluster?: string | null
  pool?: string
  executable: PlaneExecutable
  lifetime_limit_seconds?: number | null
  max_idle_seconds?: number | null
}

/** The body of `POST /ctrl/connect`. */
export interface PlaneConnectRequest {
  key?: PlaneKeyConfig | null
  spawn_config?: PlaneSpawnConfig | null
  user?: string | null
  auth?: Record<string, unknown>
}

/** Plane's `ConnectResponse`: every key present, nulls included; no `ready_url`. */
export interface PlaneConnectResponse {
  backend_id: string
  spawned: boolean
  status: BackendStatus
  token: string
  url: string
  subdomain: string | null
  secret_token: string | null
  /** `{controller}/pub/b/{id}/status`; the stream is its sibling `…/status-stream`. */
  status_url: string
  /** The drone that spawned it; null when the connect returned a running backend. */
  drone: string | null
}

/** Plane's `BackendStatusStreamEntry` (`/pub/b/{id}/status` and each status-stream event). */
export interface PlaneStatusEntry {
  status: BackendStatus
  termination_reason?: TerminationReason
  termination_kind?: TerminationKind
  /** Only on `terminated`. */
  exit_error?: boolean
  /** Milliseconds since the Unix epoch. */
  time: number
}

// ---------------------------------------------------------------------------------------------
// Parsing (lenient reading)

type Obj = Record<string, unknown>

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function fail(what: string, field: string, problem: string): never {
  throw new ProtocolError(`${what}: ${field} ${problem}`, field)
}

/** Normalises `time` (ISO string or epoch milliseconds) to an ISO string. */
export function normaliseTime(value: unknown, what = 'backend state'): string {
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value).toISOString()
  if (typeof value === 'string' && value !== '' && !Number.isNaN(Date.parse(value))) return value
  return fail(what, 'time', 'is not an ISO time or epoch milliseconds')
}

function optionalString<T extends string>(obj: Obj, field: string, what: string, allowed?: readonly T[]): T | undefined {
  const value = obj[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') return fail(what, field, 'is not a string')
  if (allowed && !allowed.includes(value as T)) return fail(what, field, `is not one of ${allowed.join(', ')}`)
  return value as T
}

/**
 * Reads one backend state. Throws {@link ProtocolError} naming the field when it is malformed.
 * Termination reasons the client does not know yet are passed through, so that a server adding
 * one does not break following.
 */
export function parseBackendState(value: unknown, what = 'backend state'): BackendState {
  if (!isObject(value)) return fail(what, 'body', 'is not a JSON object')
  const status = value.status
  if (!isBackendStatus(status)) return fail(what, 'status', `is not a known status (${JSON.stringify(status)})`)
  const time = normaliseTime(value.time, what)
  const reason = optionalString<TerminationReason>(value, 'termination_reason', what)
  const kind = optionalString<TerminationKind>(value, 'termination_kind', what, ['soft', 'hard'])
  switch (status) {
    case 'terminating':
    case 'hard-terminating': {
      if (reason === undefined) return fail(what, 'termination_reason', `is missing on ${status}`)
      const state: TerminatingState = { status, time, termination_reason: reason }
      if (kind !== undefined) state.termination_kind = kind
      return state
    }
    case 'terminated': {
      const state: TerminatedState = { status, time }
      if (reason !== undefined) state.termination_reason = reason
      if (kind !== undefined) state.termination_kind = kind
      const exitError = value.exit_error
      if (exitError !== undefined && exitError !== null) {
        if (typeof exitError !== 'boolean') return fail(what, 'exit_error', 'is not a boolean')
        state.exit_error = exitError
      }
      return state
    }
    default:
      return { status, time }
  }
}

/** Reads a connect response. Throws {@link ProtocolError} naming the field when it is malformed. */
export function parseConnectResponse(value: unknown): ConnectResponse {
  const what = 'connect response'
  if (!isObject(value)) return fail(what, 'body', 'is not a JSON object')
  for (const field of ['backend_id', 'token', 'url', 'status_url'] as const) {
    if (typeof value[field] !== 'string' || value[field] === '') fail(what, field, 'is not a non-empty string')
  }
  if (typeof value.spawned !== 'boolean') fail(what, 'spawned', 'is not a boolean')
  if (!isBackendStatus(value.status)) fail(what, 'status', `is not a known status (${JSON.stringify(value.status)})`)
  const readyUrl = value.ready_url
  if (readyUrl !== undefined && readyUrl !== null && typeof readyUrl !== 'string') fail(what, 'ready_url', 'is not a string')
  const secret = value.secret_token
  if (secret !== undefined && secret !== null && typeof secret !== 'string') fail(what, 'secret_token', 'is not a string')
  const response: ConnectResponse = {
    backend_id: value.backend_id as string,
    spawned: value.spawned as boolean,
    status: value.status as BackendStatus,
    token: value.token as string,
    url: value.url as string,
    status_url: value.status_url as string,
    // A missing one reads as '' (the dev server's "none"); an explicit null is kept as received.
    ready_url: readyUrl === null ? null : ((readyUrl as string | undefined) ?? ''),
  }
  if (secret !== undefined) response.secret_token = secret as string | null
  return response
}

/** True when `value` reads as a {@link BackendState} (the non-throwing form of {@link parseBackendState}). */
export function isBackendState(value: unknown): value is BackendState {
  try {
    parseBackendState(value)
    return true
  } catch {
    return false
  }
}

/** True when `value` reads as a {@link ConnectResponse}. */
export function isConnectResponse(value: unknown): value is ConnectResponse {
  try {
    parseConnectResponse(value)
    return true
  } catch {
    return false
  }
}
