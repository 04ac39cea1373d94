/**
 * What a backend is told through its environment: where to listen (`PORT`, `HOST`) and which
 * assignment it runs (`SESSION_BACKEND_*`), read once, validated, with a typed error naming the
 * variable when one is missing or malformed.
 */
import { BackendEnvError } from '../errors.js'

/** The environment variables this module reads. */
const ASSIGNMENT_VARIABLES = ['SESSION_BACKEND_ID', 'SESSION_BACKEND_KEY', 'SESSION_BACKEND_FENCING_TOKEN', 'SESSION_BACKEND_STATIC_TOKEN', 'SESSION_BACKEND_DATA_DIR'] as const

/** Options of {@link JamsocketBackend}. */
export interface JamsocketBackendOptions {
  /**
   * The environment to read.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>> | undefined
}

type Env = Readonly<Record<string, string | undefined>>

// An empty value counts as missing: `FOO= node backend.js` is a slip, not a value.
function read(env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function missing(name: string): never {
  throw new BackendEnvError(`${name} is not set: start this backend through the local server (session-backends dev) or a Jamsocket/Plane cluster, which set it`, name)
}

function required(env: Env, name: string): string {
  return read(env, name) ?? missing(name)
}

function integer(env: Env, name: string, min: number, max: number): number | undefined {
  const text = read(env, name)
  if (text === undefined) return undefined
  const value = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new BackendEnvError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text.slice(0, 40))}`, name)
  }
  return value
}

/**
 * The backend's assignment, shaped as `@jamsocket/session-backend`'s `BackendAssignment`. Without
 * a warm pool (locally and on Plane) it is known from the start, and `ready()` only records that
 * the backend said so.
 */
export class BackendAssignment {
  /** The backend id (`SESSION_BACKEND_ID`). */
  readonly backendId: string
  /** The key this backend holds (`SESSION_BACKEND_KEY`). */
  readonly key: string
  /** The fencing token (`SESSION_BACKEND_FENCING_TOKEN`), or null when none was given. */
  readonly fencingToken: number | null
  /** The environment without the `SESSION_BACKEND_*` variables. */
  readonly env: Record<string, string | undefined>
  /** True once {@link ready} was called. */
  isReady = false
  readonly #staticToken: string | null

  /** @internal */
  constructor(backend: JamsocketBackend, env: Record<string, string | undefined>) {
    this.backendId = backend.backendId
    this.key = backend.key
    this.fencingToken = backend.fencingToken
    this.#staticToken = backend.staticToken
    this.env = env
  }

  /** The backend's static token (`SESSION_BACKEND_STATIC_TOKEN`), or null. Kept out of logs and JSON. */
  get staticToken(): string | null {
    return this.#staticToken
  }

  /** Says the backend is ready for requests (a no-op for the engine without warm pools). */
  ready(): void {
    this.isReady = true
  }
}

/**
 * The environment of a session backend, read when constructed:
 *
 * ```ts
 * const backend = new JamsocketBackend()          // throws BackendEnvError when PORT, … is missing
 * server.listen(backend.port, backend.host)       // only where the proxy can reach it
 * ```
 *
 * Named and shaped after `@jamsocket/session-backend`'s class (`port`, `assignment()`), without its
 * warm-pool socket.
 */
export class JamsocketBackend {
  /** The port to listen on (`PORT`, required). */
  readonly port: number
  /**
   * The address to listen on (`HOST`): the local server passes its loopback address so that only its
   * proxy (which sets the identity headers) can reach the backend. `undefined` when not given: every
   * interface, as a container on Jamsocket or Plane needs (Node's default for `listen(port)`).
   */
  readonly host: string | undefined
  /** The backend id (`SESSION_BACKEND_ID`, required). */
  readonly backendId: string
  /** The key this backend holds (`SESSION_BACKEND_KEY`, required). */
  readonly key: string
  /** Epoch milliseconds when the key was acquired (`SESSION_BACKEND_FENCING_TOKEN`), or null when not given. */
  readonly fencingToken: number | null
  /**
   * The persistent data directory (`SESSION_BACKEND_DATA_DIR`) when the connect request asked for a
   * mount, else null. (In a container on Plane the mount is at `/plane-data`.)
   */
  readonly dataDir: string | null
  readonly #staticToken: string | null
  readonly #env: Env

  constructor(options: JamsocketBackendOptions = {}) {
    const env = options.env ?? process.env
    this.#env = env
    this.port = integer(env, 'PORT', 1, 65_535) ?? missing('PORT')
    this.host = read(env, 'HOST')
    this.backendId = required(env, 'SESSION_BACKEND_ID')
    this.key = required(env, 'SESSION_BACKEND_KEY')
    this.fencingToken = integer(env, 'SESSION_BACKEND_FENCING_TOKEN', 0, Number.MAX_SAFE_INTEGER) ?? null
    this.#staticToken = read(env, 'SESSION_BACKEND_STATIC_TOKEN') ?? null
    this.dataDir = read(env, 'SESSION_BACKEND_DATA_DIR') ?? null
  }

  /** The backend's static token (`SESSION_BACKEND_STATIC_TOKEN`, Plane's `use_static_token`), or null. Kept out of logs and JSON. */
  get staticToken(): string | null {
    return this.#staticToken
  }

  /** The assignment, as `@jamsocket/session-backend` gives it (resolves at once: there is no warm pool to wait for). */
  async assignment(): Promise<BackendAssignment> {
    const rest: Record<string, string | undefined> = { ...this.#env }
    for (const name of ASSIGNMENT_VARIABLES) delete rest[name]
    return new BackendAssignment(this, rest)
  }
}
