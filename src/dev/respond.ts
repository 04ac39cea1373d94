/**
 * Small HTTP helpers shared by the API and the proxy: error bodies in the hosted API's shape, JSON
 * answers, capped body reading, the `Host` allowlist, origin and path-segment parsing, and random
 * identifiers.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { HostedErrorBody } from '../wire.js'

/** An HTTP error answer: status, machine-readable code and a short message. */
export class ApiProblem extends Error {
  override name = 'ApiProblem'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** `length` random characters of `[a-z0-9]` (Plane's backend id format). */
export function randomName(length = 14): string {
  const bytes = randomBytes(length)
  let out = ''
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % 36]
  return out
}

/** 32 random bytes, base64url without padding (Plane's token format). */
export function randomToken(): string {
  return randomBytes(32).toString('base64url')
}

/** CORS headers of the unauthenticated routes, as Plane's `/pub` routes send them. */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
}

/** Sends `body` as JSON. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  })
  res.end(text)
}

/** Sends an error in the hosted API's shape: `{"error":{"status","code","message","id"}}`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJson(res, status, errorBody(status, code, message), headers)
}

/** The hosted API's error body, with a fresh request id. */
export function errorBody(status: number, code: string, message: string): HostedErrorBody {
  return { error: { status, code, message, id: randomName() } }
}

/**
 * Reads a request body of at most `maxBytes` as text. Rejects with a 413 {@link ApiProblem} as soon
 * as more arrives (the caller answers and the connection is closed), never buffering past the cap.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(new ApiProblem(413, 'PayloadTooLarge', `request body is larger than ${maxBytes} bytes`))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        cleanup()
        req.resume()
        reject(new ApiProblem(413, 'PayloadTooLarge', `request body is larger than ${maxBytes} bytes`))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

/** An address as it goes in a URL or a Host header: an IPv6 address in brackets. */
export function bracket(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** An address without URL brackets (`[::1]` → `::1`). */
export function unbracket(host: string): string {
  return host.replace(/^\[|\]$/g, '')
}

/** Which `Host` headers a server accepts: exact `name:port` strings, precomputed for a cheap check. */
export class HostCheck {
  readonly #exact = new Set<string>()

  constructor(names: Iterable<string>, port: number) {
    for (const raw of names) {
      const name = raw.toLowerCase()
      const bracketed = bracket(name)
      this.#exact.add(`${bracketed}:${port}`)
      if (port === 80) this.#exact.add(bracketed)
    }
  }

  /** True when `host` (the request's Host header) names this server. */
  allows(host: string | undefined): boolean {
    if (host === undefined) return false
    return this.#exact.has(host) || this.#exact.has(host.toLowerCase())
  }
}

/** The host[:port] of an Origin header value; '' when it is not a URL (e.g. `null`). */
export function originHost(origin: string): string {
  try {
    return new URL(origin).host
  } catch {
    return ''
  }
}

/** A percent-decoded URL path segment; undefined when it is absent, empty or not valid percent-encoding. */
export function decodeSegment(segment: string | undefined): string | undefined {
  if (segment === undefined || segment === '') return undefined
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}
