/**
 * What a target (the local server, hosted Jamsocket, a Plane controller) decides: the request of
 * each call and how its answers read. Everything else (retries, timeouts, errors, handles, the
 * pool) is the same for every target, so another engine is one more file of this shape.
 */
import type { ConnectRequest, TerminateResponse } from '../../wire.js'
import type { Call } from '../request.js'

/** Which kind of server a client talks to. */
export type TargetKind = 'dev' | 'hosted' | 'plane'

/** What `util.inspect` and `JSON.stringify` show of a client: everything but the token. */
export interface JamsocketSummary {
  apiUrl: string
  account: string
  service: string
  dev: boolean
  /** `[redacted]` when the client has a token, `''` when it has none (a Plane controller without auth). */
  token: string
  /** Only for a Plane target: the controller's URL. */
  plane?: string
  /** Only for a Plane target: the image its backends run. */
  image?: string
  /** Only for a Plane target: the cluster, when one was set. */
  cluster?: string
  /** Only for a Plane target: the drone pool, when one was set. */
  pool?: string
}

/** A target: where requests go and what they look like. @internal */
export interface Target {
  readonly kind: TargetKind
  /** The base URL requests go to (the controller's for Plane), without a trailing slash. */
  readonly apiUrl: string
  readonly account: string
  readonly service: string
  /** The bearer token, `''` when there is none; redacted from everything that comes back. */
  readonly token: string
  /** The connect call for a request already checked by `checkConnectRequest` (TypeError for what this target cannot send). */
  connect(request: ConnectRequest | undefined): Call
  status(backendId: string): Call
  terminate(backendId: string, hard: boolean): Call
  /** Reads terminate's 2xx body (ProtocolError when it is not what this target answers). */
  terminated(body: unknown): TerminateResponse
  summary(): JamsocketSummary
}
