/**
 * The request head a backend receives through the proxy: the server's identity headers first, then
 * what the client sent minus anything that could pass for identity and minus hop-by-hop headers.
 * Heads arrive parsed by Node's own HTTP parser (llhttp); this only chooses and orders fields.
 */
import type { Grant } from './registry.js'

/**
 * Most header fields a backend is sent. Node keeps the first 1,000 fields of a head and silently drops
 * the rest, so a longer head is refused (431) rather than passed on cut.
 */
const MAX_FIELDS = 1000
/** Fields the upstream client adds itself (`connection`, and `host` when the client sent none). */
const ADDED_UPSTREAM = 2

// A header value the server adds, made safe to write as latin1: no control characters (header
// injection through a user name), and non-ASCII text as its UTF-8 bytes (as Plane sends it).
function headerValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\0-\x08\n-\x1f\x7f]/g, '')
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(clean) ? Buffer.from(clean, 'utf8').toString('latin1') : clean
}

// The identity fields of a grant, built once per grant.
const identities = new WeakMap<Grant, readonly string[]>()
function identity(grant: Grant): readonly string[] {
  let fields = identities.get(grant)
  if (fields === undefined) {
    fields = [
      ...(grant.user !== undefined ? ['x-verified-username', headerValue(grant.user)] : []),
      'x-verified-user-data',
      headerValue(grant.userData),
      'x-verified-backend',
      grant.backend.id,
      'x-verified-secret',
      grant.backend.secretToken,
    ]
    identities.set(grant, fields)
  }
  return fields
}

/**
 * True for names a backend could read as `x-verified-*`, `x-forwarded-for` or `x-forwarded-proto`:
 * any case, and with `_` for `-` (CGI, WSGI and Rack turn both into `HTTP_X_VERIFIED_…` and merge them).
 */
function isIdentityName(name: string): boolean {
  if (name.length < 11 || (name.charCodeAt(0) | 32) !== 120 /* x */) return false
  const lower = name.toLowerCase().replace(/_/g, '-')
  return lower.startsWith('x-verified-') || lower === 'x-forwarded-for' || lower === 'x-forwarded-proto'
}

/** Connection options that name no header, and headers that frame or route the request (never dropped for being named). */
const NOT_NOMINATED = new Set(['close', 'keep-alive', 'upgrade', 'host', 'content-length', 'transfer-encoding'])

/**
 * The header names a client lists in its `Connection` fields (hop-by-hop, RFC 9110 §7.6.1), lower
 * case; undefined when it lists none besides options and framing fields.
 */
function nominated(rawHeaders: string[]): Set<string> | undefined {
  let names: Set<string> | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue
    const value = rawHeaders[i + 1]!
    // What nearly every client sends (`keep-alive`, `close`) names no header: no split needed.
    if (NOT_NOMINATED.has(value)) continue
    for (const part of value.split(',')) {
      const token = part.trim().toLowerCase()
      if (token !== '' && !NOT_NOMINATED.has(token)) (names ??= new Set()).add(token)
    }
  }
  return names
}

/** The upstream head of one request, or the status to refuse it with. */
export interface UpstreamHead {
  /** Flat `[name, value, …]`, identity first. */
  headers: string[]
  /** The request has a body (Content-Length above 0, or chunked). */
  body: boolean
}

/**
 * Builds the head a backend receives for `rawHeaders` (Node's flat `[name, value, …]` as received).
 * Identity comes first so that no number of client fields can push it out of what a backend reads.
 * Dropped: client identity look-alikes, `connection`, `keep-alive`, `proxy-connection`, `upgrade`,
 * `transfer-encoding` and `expect` (the proxy frames the body and answers `100-continue` itself), and
 * the headers the client names in `Connection` (only ever client fields: identity is the server's).
 * For an upgrade, `upgrade` is kept and `connection: upgrade` added. Returns 431 when the head would
 * have more than {@link MAX_FIELDS} fields.
 */
export function upstreamHead(rawHeaders: string[], grant: Grant, target: string, peer: string, upgrade: boolean): UpstreamHead | 431 {
  const headers = identity(grant).concat('x-verified-path', target, 'x-forwarded-for', peer, 'x-forwarded-proto', 'http')
  if (upgrade) headers.push('connection', 'upgrade')
  let body = false
  const dropped = nominated(rawHeaders)
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const value = rawHeaders[i + 1]!
    if (dropped !== undefined && dropped.has(name.toLowerCase())) continue
    // Only names starting with one of these letters are looked at closer: the rest pass as they are.
    const first = name.charCodeAt(0) | 32
    if (first === 120 /* x */) {
      if (isIdentityName(name)) continue
    } else if (first === 99 /* c */ || first === 107 /* k */ || first === 112 /* p */ || first === 116 /* t */ || first === 117 /* u */ || first === 101 /* e */) {
      const lower = name.toLowerCase()
      if (lower === 'content-length') {
        if (value !== '0') body = true
      } else if (lower === 'transfer-encoding') {
        body = true
        continue
      } else if (lower === 'connection' || lower === 'keep-alive' || lower === 'proxy-connection' || lower === 'expect') continue
      else if (lower === 'upgrade' && !upgrade) continue
    }
    headers.push(name, value)
  }
  if (headers.length / 2 + ADDED_UPSTREAM > MAX_FIELDS) return 431
  return { headers, body }
}

/** The `Host` of a head (Node's flat `[name, value, …]`): undefined without one, null with more than one. */
export function hostOf(rawHeaders: string[]): string | undefined | null {
  let host: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (host !== undefined) return null
      host = rawHeaders[i + 1]
    }
  }
  return host
}
