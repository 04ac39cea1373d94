/**
 * The error classes shared by client, status and pool. Depends on nothing (no `node:*`), so it runs
 * in browsers and edge runtimes too.
 *
 * Every error is a {@link JamsocketError}. Use the static `isInstance` guards rather than
 * `instanceof` when more than one copy of this package may be loaded (they check a global symbol,
 * not the class identity). Messages are short and never contain a token.
 */
import type { BackendState, TerminationReason } from './wire.js'

const KINDS = Symbol.for('session-backends.error.kinds')

function isKind(value: unknown, kind: string): boolean {
  const kinds = (value as Record<symbol, unknown> | null | undefined)?.[KINDS]
  return Array.isArray(kinds) && kinds.includes(kind)
}

/** The base class of every error this library throws or emits. */
export class JamsocketError extends Error {
  override name = 'JamsocketError'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    Object.defineProperty(this, KINDS, { value: ['JamsocketError'], enumerable: false })
  }

  /** @internal */
  protected mark(kind: string): void {
    ;(this as unknown as Record<symbol, string[]>)[KINDS]!.push(kind)
    this.name = kind
  }

  /** True for any error of this library, including one thrown by another copy of it. */
  static isInstance(value: unknown): value is JamsocketError {
    return isKind(value, 'JamsocketError')
  }
}

/** Fields an {@link HTTPError} is built from. */
export interface HTTPErrorInit {
  /** HTTP status of the response. */
  status: number
  /** What was being done, e.g. `connect()`; used in the message. */
  operation: string
  /** The machine-readable code from the error body (`error.code` hosted, `kind` on Plane). */
  errorCode?: string | undefined
  /** The request id from the error body, to quote when asking for support. */
  requestId?: string | undefined
  /** The human message from the error body. */
  serverMessage?: string | undefined
  /** The response body as text, truncated. */
  body?: string | undefined
  /** The delay the server asked for with `Retry-After`, in milliseconds. */
  retryAfterMs?: number | undefined
}

/**
 * The API answered with a non-2xx status. As in `@jamsocket/server`, `code` is the HTTP status.
 */
export class HTTPError extends JamsocketError {
  /** The HTTP status (named `code` as upstream `@jamsocket/server`). */
  declare readonly code: number
  /** The HTTP status. */
  declare readonly status: number
  /** Machine-readable error code from the body, when the server sent one (e.g. `BackendNotRunning`). */
  declare readonly errorCode: string | undefined
  /** Request id from the body, when the server sent one. */
  declare readonly requestId: string | undefined
  /** The response body, truncated to 500 characters. */
  declare readonly body: string | undefined
  /** `Retry-After` in milliseconds, when the server sent one. */
  declare readonly retryAfterMs: number | undefined

  constructor(init: HTTPErrorInit, options?: ErrorOptions) {
    const detail = [init.errorCode, init.serverMessage].filter(Boolean).join(': ')
    super(`${init.operation} failed with ${init.status}${detail ? ` ${detail}` : ''}`, options)
    this.mark('HTTPError')
    this.code = init.status
    this.status = init.status
    this.errorCode = init.errorCode
    this.requestId = init.requestId
    this.body = init.body
    this.retryAfterMs = init.retryAfterMs
  }

  /** True when retrying the same request may succeed (408, 429, 5xx). */
  get isRetryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500
  }

  static override isInstance(value: unknown): value is HTTPError {
    return isKind(value, 'HTTPError')
  }
}

/** 401 or 403: the token is missing, wrong, or not allowed to do this. */
export class AuthenticationError extends HTTPError {
  constructor(init: HTTPErrorInit, options?: ErrorOptions) {
    super(init, options)
    this.mark('AuthenticationError')
  }

  static override isInstance(value: unknown): value is AuthenticationError {
    return isKind(value, 'AuthenticationError')
  }
}

/** 429: too many requests. `retryAfterMs` says how long the server asked to wait. */
export class RateLimitError extends HTTPError {
  constructor(init: HTTPErrorInit, options?: ErrorOptions) {
    super(init, options)
    this.mark('RateLimitError')
  }

  static override isInstance(value: unknown): value is RateLimitError {
    return isKind(value, 'RateLimitError')
  }
}

/** 404 on a backend's URL: the server does not know this backend. */
export class BackendNotFoundError extends HTTPError {
  constructor(init: HTTPErrorInit, options?: ErrorOptions) {
    super(init, options)
    this.mark('BackendNotFoundError')
  }

  static override isInstance(value: unknown): value is BackendNotFoundError {
    return isKind(value, 'BackendNotFoundError')
  }
}

/** The request never got an HTTP answer (connection refused, reset, DNS failure). */
export class NetworkError extends JamsocketError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.mark('NetworkError')
  }

  static override isInstance(value: unknown): value is NetworkError {
    return isKind(value, 'NetworkError')
  }
}

/** A time limit set by `timeoutMs` ran out. Distinct from an abort by the caller's signal. */
export class TimeoutError extends JamsocketError {
  /** The limit that ran out, in milliseconds. */
  declare readonly timeoutMs: number

  constructor(message: string, timeoutMs: number, options?: ErrorOptions) {
    super(message, options)
    this.mark('TimeoutError')
    this.timeoutMs = timeoutMs
  }

  static override isInstance(value: unknown): value is TimeoutError {
    return isKind(value, 'TimeoutError')
  }
}

/** The server answered with something the wire contract does not allow. */
export class ProtocolError extends JamsocketError {
  /** The offending field, e.g. `status` or `connect response.backend_id`, when one is to blame. */
  declare readonly field: string | undefined

  constructor(message: string, field?: string, options?: ErrorOptions) {
    super(message, options)
    this.mark('ProtocolError')
    this.field = field
  }

  static override isInstance(value: unknown): value is ProtocolError {
    return isKind(value, 'ProtocolError')
  }
}

/** The backend reached `terminating`, `hard-terminating` or `terminated` before what was awaited. */
export class BackendTerminatedError extends JamsocketError {
  declare readonly backendId: string
  /** The state that ended the wait. */
  declare readonly state: BackendState
  /** Why it ended, when the server said. */
  declare readonly reason: TerminationReason | undefined
  /** Whether the process exited with an error, when the server said. */
  declare readonly exitError: boolean | undefined
  /**
   * Every status the backend reached before this, in order, with the server's times (`timingsOf()`
   * turns it into phases), as far as the follower saw it; empty when unknown.
   */
  declare readonly history: readonly BackendState[]

  constructor(backendId: string, state: BackendState, options?: ErrorOptions & { history?: readonly BackendState[] }) {
    const reason = 'termination_reason' in state ? (state.termination_reason ?? undefined) : undefined
    super(`backend ${backendId} is ${state.status}${reason ? ` (${reason})` : ''}`, options)
    this.mark('BackendTerminatedError')
    this.backendId = backendId
    this.state = state
    this.reason = reason
    this.exitError = state.status === 'terminated' ? (state.exit_error ?? undefined) : undefined
    this.history = options?.history ?? []
  }

  static override isInstance(value: unknown): value is BackendTerminatedError {
    return isKind(value, 'BackendTerminatedError')
  }
}

/**
 * Inside a backend: an environment variable the backend needs is missing or malformed (thrown by
 * `new JamsocketBackend()` from `session-backends/backend`). The message names the variable; it
 * never quotes a secret's value.
 */
export class BackendEnvError extends JamsocketError {
  /** The variable to blame, e.g. `PORT`. */
  declare readonly variable: string

  constructor(message: string, variable: string, options?: ErrorOptions) {
    super(message, options)
    this.mark('BackendEnvError')
    this.variable = variable
  }

  static override isInstance(value: unknown): value is BackendEnvError {
    return isKind(value, 'BackendEnvError')
  }
}

/**
 * Inside a backend: a request's `x-verified-*` identity headers are present but malformed (e.g.
 * `x-verified-user-data` that is not a JSON object), or a socket.io handshake was refused.
 */
export class IdentityError extends JamsocketError {
  /** The header to blame, when one is (e.g. `x-verified-user-data`). */
  declare readonly header: string | undefined

  constructor(message: string, header?: string, options?: ErrorOptions) {
    super(message, options)
    this.mark('IdentityError')
    this.header = header
  }

  static override isInstance(value: unknown): value is IdentityError {
    return isKind(value, 'IdentityError')
  }
}
