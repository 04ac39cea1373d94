/**
 * `session-backends/backend`: what code running inside a session backend needs — its environment
 * (where to listen, which key it holds), the verified identity of each request, the secret check,
 * a clean shutdown on SIGTERM, and a socket.io middleware. Node only; no dependency.
 */
export { BackendAssignment, JamsocketBackend } from './env.js'
export type { JamsocketBackendOptions } from './env.js'
export { checkSecret, identity } from './identity.js'
export type { HeadersLike, Identity, RequestLike } from './identity.js'
export { onTerminate } from './terminate.js'
export type { OnTerminateOptions, TerminateCleanup } from './terminate.js'
export { socketIdentity } from './socketio.js'
export type { HandshakeLike, IdentitySocketData, SocketIdentityOptions, SocketLike } from './socketio.js'
export { BackendEnvError, IdentityError, JamsocketError } from '../errors.js'
