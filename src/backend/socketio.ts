/**
 * A socket.io middleware that gives each connection the identity the proxy vouched for in its
 * handshake, and optionally checks the page's secret. Typed structurally: this module imports
 * nothing from socket.io, which stays an optional peer.
 */
import { IdentityError } from '../errors.js'
import { checkSecret, identity, type Identity } from './identity.js'

/** The parts of a socket.io `socket.handshake` this middleware reads (or a `secret` function may). */
export interface HandshakeLike {
  /** The handshake request's headers (Node's, lower-case names). */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  /** What the client passed as `auth`. */
  readonly auth?: Readonly<Record<string, unknown>> | undefined
  /** The handshake URL's query (avoid it for secrets: URLs end up in logs). */
  readonly query?: Readonly<Record<string, string | readonly string[] | undefined>> | undefined
}

/** The parts of a socket.io server `Socket` this middleware uses. */
export interface SocketLike {
  readonly handshake: HandshakeLike
  // `any`, as socket.io types it (the app's SocketData).
  data: any
}

/** What the middleware puts in `socket.data` (use it as socket.io's `SocketData` type parameter). */
export interface IdentitySocketData {
  identity: Identity
}

/** Options of {@link socketIdentity}. */
export interface SocketIdentityOptions {
  /**
   * Also require the page's secret (the connect response's `secret_token`) to match
   * `x-verified-secret` ({@link checkSecret}). `true` reads it from the handshake's
   * `auth.secret_token` (`io(origin, { path, auth: { secret_token } })` in the page, named as the
   * connect response's field); a function reads it from anywhere else.
   * @default false
   */
  secret?: boolean | ((handshake: HandshakeLike) => unknown) | undefined
}

/**
 * A socket.io middleware (`io.use(socketIdentity())`): reads the verified identity from the
 * handshake headers into `socket.data.identity`, and refuses the connection with an
 * {@link IdentityError} (the client's `connect_error`) when there is none (the socket did not come
 * through the proxy), when it is malformed, or when `secret` is asked for and does not match.
 */
export function socketIdentity(options: SocketIdentityOptions = {}): (socket: SocketLike, next: (error?: Error) => void) => void {
  const { secret = false } = options
  const secretOf = typeof secret === 'function' ? secret : secret ? (handshake: HandshakeLike) => handshake.auth?.secret_token : undefined
  return (socket, next) => {
    let who: Identity | undefined
    try {
      who = identity(socket.handshake)
      if (who === undefined) throw new IdentityError('no verified identity: the connection did not come through the proxy')
      if (secretOf !== undefined && !checkSecret(socket.handshake, secretOf(socket.handshake))) {
        throw new IdentityError('the secret does not match x-verified-secret', 'x-verified-secret')
      }
    } catch (error) {
      next(error instanceof Error ? error : new IdentityError('the handshake could not be verified', undefined, { cause: error }))
      return
    }
    if (typeof socket.data !== 'object' || socket.data === null) socket.data = {}
    socket.data.identity = who
    next()
  }
}
