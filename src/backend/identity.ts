/**
 * Who is calling: the `x-verified-*` headers that the proxy (local, Jamsocket or Plane) sets on every
 * request after dropping any a client sent, read from a Node `IncomingMessage`, a Fetch `Request` or
 * a socket.io handshake; and the secret check Plane leaves to the app.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { IdentityError } from '../errors.js'

/** Headers as Fetch (`Headers`) or Node (`IncomingHttpHeaders`, lower-case names) hold them. */
export type HeadersLike = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>

/** Anything with headers: a Node `IncomingMessage`, a Fetch `Request`, a socket.io `socket.handshake`. */
export interface RequestLike {
  readonly headers: HeadersLike
}

/** The verified identity of a request, as the proxy vouches for it. */
export interface Identity {
  /** The connect request's `user` (`x-verified-username`); undefined when it had none, and for static tokens. */
  user: string | undefined
  /** The connect request's `auth` (`x-verified-user-data`, parsed); `{}` when it had none. */
  auth: Record<string, unknown>
  /** The backend the proxy routed to (`x-verified-backend`). */
  backendId: string
  /** The path the client asked for, including the token segment (`x-verified-path`). */
  path: string | undefined
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

// Node (and undici, for a Request built from a Node request) read header bytes as latin1; the
// proxies write user names and auth data as UTF-8 bytes. Decode them back; keep text that is not UTF-8.
function decodeUtf8(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\x80-\xff]/.test(text) || /[^\x00-\xff]/.test(text)) return text
  try {
    return utf8.decode(Uint8Array.from(text, (c) => c.charCodeAt(0)))
  } catch {
    return text
  }
}

function isFetchHeaders(headers: HeadersLike): headers is { get(name: string): string | null } {
  return typeof headers.get === 'function'
}

/** One header's value (several values joined by `, `, as Fetch does), or undefined. */
function header(headers: HeadersLike, name: string): string | undefined {
  const value = isFetchHeaders(headers) ? (headers.get(name) ?? undefined) : headers[name]
  if (value === undefined) return undefined
  return decodeUtf8(typeof value === 'string' ? value : value.join(', '))
}

function headersOf(request: RequestLike): HeadersLike {
  const headers = (request as RequestLike | null | undefined)?.headers
  if (typeof headers !== 'object' || headers === null) throw new TypeError('identity() needs a request with headers (IncomingMessage, Request or socket.handshake)')
  return headers
}

/**
 * The verified identity of `request`, from the `x-verified-*` headers the proxy sets. Undefined when
 * the request did not come through a proxy (no `x-verified-backend`: e.g. the readiness probe
 * `HEAD /`). Throws {@link IdentityError} when `x-verified-user-data` is not a JSON object.
 *
 * The headers can be trusted only because the backend is reachable through the proxy alone: listen
 * on the `host` that {@link JamsocketBackend} gives.
 */
export function identity(request: RequestLike): Identity | undefined {
  const headers = headersOf(request)
  const backendId = header(headers, 'x-verified-backend')
  if (backendId === undefined) return undefined
  const data = header(headers, 'x-verified-user-data')
  let auth: unknown = {}
  if (data !== undefined) {
    try {
      auth = JSON.parse(data)
    } catch (error) {
      throw new IdentityError('x-verified-user-data is not valid JSON', 'x-verified-user-data', { cause: error })
    }
    if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) {
      throw new IdentityError('x-verified-user-data is not a JSON object', 'x-verified-user-data')
    }
  }
  return { user: header(headers, 'x-verified-username'), auth: auth as Record<string, unknown>, backendId, path: header(headers, 'x-verified-path') }
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest()

/**
 * Plane's secondary secret validation: true when `secretFromClient` (the connect response's
 * `secret_token`, which the page sends outside the URL, e.g. in a body or a socket.io handshake)
 * equals the `x-verified-secret` header the proxy set. Compared in constant time. False when either
 * is missing or empty (static tokens have no secret), or the client's is not a string.
 */
export function checkSecret(request: RequestLike, secretFromClient: unknown): boolean {
  const expected = header(headersOf(request), 'x-verified-secret')
  if (expected === undefined || expected === '' || typeof secretFromClient !== 'string' || secretFromClient === '') return false
  // Digests of equal length, so that neither the length nor a prefix of the secret leaks through timing.
  return timingSafeEqual(digest(expected), digest(secretFromClient))
}
