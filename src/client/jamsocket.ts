/**
 * The `Jamsocket` client: spawns and connects to session backends through the v2 HTTP API (with the
 * same constructor, `fromEnv()` and wire as `@jamsocket/server`) or a Plane controller, plus
 * timeouts, cancellation, retries and typed errors. It holds the token: server-side only. What
 * differs between targets (paths, bodies) is in `./targets/`; everything here is shared.
 */
import { checkMs, type FetchLike } from '../abort.js'
import { BackendPool, type BackendPoolOptions } from '../pool/pool.js'
import { BackendHandle, type BackendHandleOptions } from '../status/handle.js'
import { setDefaultStreamFetch } from '../status/transport.js'
import {
  type BackendState,
  type ConnectRequest,
  type ConnectResponse,
  parseBackendState,
  parseConnectResponse,
  type TerminateResponse,
} from '../wire.js'
import { guardBrowser, initFromEnv, type JamsocketEnv, processEnv, resolveTarget } from './env.js'
import {
  describe,
  type JamsocketInitOptions,
  type JamsocketOptions,
  type RequestOptions,
  type ResolvedOptions,
  resolveOptions,
  type TerminateOptions,
} from './options.js'
import { statusFetch } from './node-stream.js'
import { attempt, type Call } from './request.js'
import { type RetryMode, withRetries } from './retry.js'
import type { JamsocketSummary, Target } from './targets/index.js'
import { checkBackendId, checkConnectRequest, checkSignal } from './validate.js'

const OPTION_KEYS = ['fetch', 'retry', 'timeoutMs', 'dangerouslyAllowBrowser'] as const

// On Node, every handle follows with the lean node:http transport unless given a fetch: the client's,
// the pool's and those made by `new BackendHandle()` alike.
setDefaultStreamFetch(statusFetch())

/**
 * A client of session backends: the hosted Jamsocket v2 API, the local dev server, or a Plane controller.
 *
 * @example
 * ```ts
 * const jamsocket = new Jamsocket({ account, token, service })   // or { dev: true }, or { plane, image }
 * const backend = await jamsocket.connect({ key: 'doc-42' })
 * await backend.waitUntilReady()
 * ```
 */
export class Jamsocket {
  readonly #target: Target
  readonly #options: ResolvedOptions
  readonly #handleOptions: BackendHandleOptions

  /**
   * @param init `{ account, token, service, apiUrl? }`, `{ dev: true, port? }` for a local dev
   *   server at `http://localhost:{port}` (account, service and token `-`), or
   *   `{ plane, image, cluster?, pool?, token? }` for a Plane controller. Options may be given inline.
   * @param options Options; they win over the same options given inline in `init`.
   * @throws TypeError/RangeError for bad input, JamsocketError in a browser unless `dangerouslyAllowBrowser`.
   */
  constructor(init: JamsocketInitOptions, options?: JamsocketOptions) {
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
      throw new TypeError(`Jamsocket: options must be an object, got ${describe(options)}`)
    }
    const merged: JamsocketOptions = {}
    if (typeof init === 'object' && init !== null) {
      for (const key of OPTION_KEYS) if (init[key] !== undefined) (merged as Record<string, unknown>)[key] = init[key]
    }
    for (const key of OPTION_KEYS) if (options?.[key] !== undefined) (merged as Record<string, unknown>)[key] = options[key]
    this.#options = resolveOptions(merged)
    guardBrowser(this.#options.dangerouslyAllowBrowser)
    this.#target = resolveTarget(init)
    // Handles follow status with the caller's fetch, else with the status layer's default: on Node
    // the lean node:http transport, registered when this module loads (above).
    this.#handleOptions = this.#options.fetch ? { fetch: this.#options.fetch } : {}
  }

  /**
   * A client configured from the environment, as upstream: `JAMSOCKET_DEV=true` (with optional
   * `JAMSOCKET_DEV_PORT`) for the dev server, else `JAMSOCKET_ACCOUNT`, `JAMSOCKET_TOKEN`,
   * `JAMSOCKET_SERVICE` (all required) and optional `JAMSOCKET_API_URL`; or, when
   * `PLANE_CONTROLLER_URL` is set (and `JAMSOCKET_DEV` is not `true`), a Plane target from it,
   * `PLANE_IMAGE` (required), `PLANE_CLUSTER`, `PLANE_POOL` and `PLANE_TOKEN`.
   */
  static fromEnv(env: JamsocketEnv = processEnv(), options?: JamsocketOptions): Jamsocket {
    return new Jamsocket(initFromEnv(env), options)
  }

  /** The API base URL (the controller's for Plane), without a trailing slash. */
  get apiUrl(): string {
    return this.#target.apiUrl
  }

  /** The account name (`-` in dev mode, `''` for Plane). */
  get account(): string {
    return this.#target.account
  }

  /** The service name (`-` in dev mode, `''` for Plane). */
  get service(): string {
    return this.#target.service
  }

  /** The injected `fetch`, or undefined when the client uses `globalThis.fetch` (looked up per call). */
  get fetch(): FetchLike | undefined {
    return this.#options.fetch
  }

  /** True when talking to a local dev server. */
  get dev(): boolean {
    return this.#target.kind === 'dev'
  }

  /** Which kind of server this client talks to: `'dev'`, `'hosted'` or `'plane'`. */
  get target(): Target['kind'] {
    return this.#target.kind
  }

  /**
   * Returns the running backend that holds `request.key`, or spawns one:
   * `POST {apiUrl}/v2/service/{account}/{service}/connect` (Plane: `POST {plane}/ctrl/connect`
   * with Plane's body). Resolves once the API answered (the backend is usually still starting:
   * `await handle.waitUntilReady()`).
   *
   * Retried per the client's retry policy; without a `key` only when the request provably did not
   * reach the server or the server answered 429/503, so that it never spawns two backends.
   */
  async connect(request?: ConnectRequest, options: RequestOptions = {}): Promise<BackendHandle> {
    const call = this.#target.connect(checkConnectRequest(request))
    const mode: RetryMode = request?.key === undefined ? 'unsent-only' : 'idempotent'
    const requestedAt = performance.now()
    const json = await this.#run(call, mode, options)
    return new BackendHandle(parseConnectResponse(json), { ...this.#handleOptions, requestedAt })
  }

  /**
   * Wraps a ConnectResponse you already have (e.g. from a cache or another process) in a
   * {@link BackendHandle} without a request. Throws ProtocolError when it is malformed.
   */
  handle(connectResponse: ConnectResponse): BackendHandle {
    return new BackendHandle(parseConnectResponse(connectResponse), this.#handleOptions)
  }

  /**
   * A {@link BackendPool} over this client: concurrent connects for one key and identity share one
   * call, and all handles of a backend share one status stream.
   */
  pool(options?: BackendPoolOptions): BackendPool {
    return new BackendPool(this, options)
  }

  /**
   * The backend's current state: `GET {apiUrl}/v2/backend/{id}/status` (Plane:
   * `GET {plane}/pub/b/{id}/status`); no token is sent. Rejects with BackendNotFoundError for an
   * unknown backend.
   */
  async status(backendId: string, options: RequestOptions = {}): Promise<BackendState> {
    const id = checkBackendId('status()', backendId)
    const json = await this.#run(this.#target.status(id), 'idempotent', options)
    return parseBackendState(json)
  }

  /**
   * Asks the backend to stop: `POST {apiUrl}/v2/backend/{id}/terminate` with `{"hard": …}`
   * (Plane: `POST {plane}/ctrl/b/{id}/soft-terminate` or `/hard-terminate`, which answers `null`).
   * Resolves with `{ status: 'ok' }` on every target. Rejects with BackendNotFoundError for an
   * unknown backend; an HTTPError with `errorCode === 'BackendNotRunning'` when it has already
   * terminated (hosted API; Plane answers 200).
   */
  async terminate(backendId: string, options: TerminateOptions = {}): Promise<TerminateResponse> {
    const id = checkBackendId('terminate()', backendId)
    const hard = options.hard ?? false
    if (typeof hard !== 'boolean') throw new TypeError(`terminate(): hard must be a boolean, got ${describe(hard)}`)
    const json = await this.#run(this.#target.terminate(id, hard), 'idempotent', options)
    return this.#target.terminated(json)
  }

  /** Everything but the token (`[redacted]`). */
  toJSON(): JamsocketSummary {
    return this.#target.summary()
  }

  /** `util.inspect()` / `console.log()` show the summary, never the token. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Jamsocket ${JSON.stringify(this.toJSON())}`
  }

  // Built once: it depends only on the fixed token and options.
  #transportCache: { fetch: FetchLike | undefined; token: string } | undefined

  async #run(call: Call, mode: RetryMode, options: RequestOptions): Promise<unknown> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`${call.operation}: options must be an object, got ${describe(options)}`)
    const signal = checkSignal(options.signal)
    checkMs('timeoutMs', options.timeoutMs)
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs
    const transport = (this.#transportCache ??= { fetch: this.#options.fetch, token: this.#target.token })
    return withRetries(() => attempt(call, transport, signal, timeoutMs), this.#options.retry, mode, signal)
  }
}
