/**
 * `session-backends/client`: what a browser needs to follow a backend a server connected to,
 * compatible with `@jamsocket/client`. No `node:*`, no account token.
 */
export { SessionBackend } from './session-backend.js'
export { BackendHandle } from '../status/handle.js'
export type { BackendHandleOptions, BackendHandleEvents, BackendHandleEvent, StateOf, WaitUntilReadyOptions } from '../status/handle.js'
export type { ReconnectOptions, StatusFeedOptions } from '../status/feed.js'
export {
  JamsocketError,
  HTTPError,
  AuthenticationError,
  RateLimitError,
  BackendNotFoundError,
  NetworkError,
  TimeoutError,
  ProtocolError,
  BackendTerminatedError,
} from '../errors.js'
export type {
  BackendStatus,
  BackendState,
  AliveState,
  TerminatingState,
  TerminatedState,
  TerminationKind,
  TerminationReason,
  ConnectRequest,
  ConnectResponse,
} from '../wire.js'

