/**
 * One attempt of one API call: the request as sent, and what the response means. A 2xx must carry
 * a JSON body; anything else becomes a typed error carrying what the server said (either error body
 * shape), with the token redacted from everything that came back.
 */
import { deadline, discard, type FetchLike } from '../abort.js'
import { codedError } from '../cause.js'
import { parseRetryAfter } from '../status/backoff.js'
import {
  AuthenticationError,
  BackendNotFoundError,
  HTTPError,
  type HTTPErrorInit,
  NetworkError,
  ProtocolError,
  RateLimitError,
} from '../errors.js'

/** One API call, fully described. @internal */
export interface Call {
  /** For messages, e.g. `connect()`. */
  readonly operation: string
  readonly method: 'GET' | 'POST'
  readonly url: string
  readonly headers: Record<string, string>
  readonly body?: string | undefined
  /** The request carries the token (said in a redirect's error; no request follows redirects). */
  readonly withToken: boolean
  /** A 404 means "no such backend" ({@link BackendNotFoundError}). */
  readonly backendRoute: boolean
}

/** How requests are sent. @internal */
export interface Transport {
  readonly fetch: FetchLike | undefined
  /** Redacted from every error body and message. */
  readonly token: string
}

/** The longest body text kept on an {@link HTTPError}. */
export const MAX_BODY_CHARS = 500
const MAX_MESSAGE_CHARS = 200
const REDACTED = '[redacted]'

/** A random query key, as upstream's `?{noCache}` (bare key, no `=`): defeats caches between here and the API. */
export function cacheBuster(): string {
  return Math.random().toString(36).slice(2, 15) || 'nc'
}

/**
 * Replaces every occurrence of the token, also in the forms a server may echo it in: JSON-escaped
 * (`\/`, `\"`, `\\`, `\u00xx`, also escaped twice over, as in JSON inside a JSON string) and
 * percent-encoded (either case), in any mix. Tokens shorter than 4 characters (the dev placeholder
 * `-`) are not secrets and would mangle every message.
 */
export function redact(text: string, token: string): string {
  if (token.length < 4) return text
  return text.replace(tokenPattern(token), REDACTED)
}

let lastPattern: { token: string; pattern: RegExp } | undefined

/** One alternation per character of the token: itself or one of its escaped forms. */
function tokenPattern(token: string): RegExp {
  if (lastPattern?.token === token) return lastPattern.pattern
  // Hex digits in either case: `\u002F` and `\u002f` are the same character.
  const hex = (code: number, width: number) =>
    [...code.toString(16).padStart(width, '0')].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('')
  let source = ''
  for (const char of token) {
    const code = char.codePointAt(0)!
    const forms = [char.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')]
    if (code < 0x10000) forms.push(`\\\\+u${hex(code, 4)}`)
    if (code < 0x80) forms.push(`%${hex(code, 2)}`)
    if (char === '/' || char === '"' || char === '\\') forms.push(`\\\\+\\${char}`)
    source += `(?:${forms.join('|')})`
  }
  lastPattern = { token, pattern: new RegExp(source, 'g') }
  return lastPattern.pattern
}

/** At most `max` characters, an ellipsis included. */
function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** The first `code` found along an error's `cause` chain (and AggregateError members), e.g. `ECONNREFUSED`. */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = []
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number) => {
    if (typeof e !== 'object' || e === null || seen.has(e) || depth > 8) return
    seen.add(e)
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') codes.push(code)
    visit((e as { cause?: unknown }).cause, depth + 1)
    const members = (e as { errors?: unknown }).errors
    if (Array.isArray(members)) for (const m of members) visit(m, depth + 1)
  }
  visit(error, 0)
  return codes
}

function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'the API'
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** What the server said in an error body: hosted `{"error":{status,code,message,id}}` or Plane `{"id","kind","message"}`. */
export function readErrorBody(text: string, contentType: string | null): Pick<HTTPErrorInit, 'errorCode' | 'requestId' | 'serverMessage'> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    // Plain text: a short one-line body (e.g. "Failed to parse the request body as JSON") is the message;
    // an HTML error page is not worth quoting.
    const line = text.trim().split(/\r?\n/, 1)[0] ?? ''
    const html = /html/i.test(contentType ?? '') || line.startsWith('<')
    return { serverMessage: line && !html ? truncate(line, MAX_MESSAGE_CHARS) : undefined }
  }
  if (typeof json !== 'object' || json === null) return {}
  const body = json as Record<string, unknown>
  const hosted = body.error
  if (typeof hosted === 'object' && hosted !== null) {
    const e = hosted as Record<string, unknown>
    return { errorCode: str(e.code), requestId: str(e.id), serverMessage: str(e.message) }
  }
  if (typeof hosted === 'string') return { serverMessage: hosted }
  return { errorCode: str(body.kind), requestId: str(body.id), serverMessage: str(body.message) }
}

// The runtime's own fetch, as found when this module loaded (before any mock replaced it).
const builtinFetch: unknown = globalThis.fetch

/**
 * The body as text, given up as soon as `signal` aborts. The runtime's fetch ties the body to the
 * request's signal already; a body from a mocked or custom fetch is not always tied to it
 * (deps-on-node20 G9), and a stalled body must not outlive the timeout. The extra abort listener
 * is only added then: an EventTarget listener costs ~3 µs on Node 20.
 */
function readText(response: Response, signal: AbortSignal, fetch: unknown): Promise<string> {
  if (signal.aborted) return Promise.reject(signal.reason)
  if (fetch === builtinFetch) return response.text()
  return new Promise<string>((resolve, reject) => {
    const onAbort = () => {
      discard(response)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    response.text().then(
      (text) => {
        signal.removeEventListener('abort', onAbort)
        resolve(text)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

function toHTTPError(call: Call, response: Response, token: string, text: string | undefined): HTTPError {
  const contentType = response.headers.get('content-type')
  const redacted = text === undefined ? undefined : redact(text, token)
  const said = redacted === undefined ? {} : readErrorBody(redacted, contentType)
  // Fields are redacted again: JSON escapes could have hidden the token from the first pass.
  const clean = (value: string | null | undefined) =>
    value ? truncate(redact(value, token), MAX_MESSAGE_CHARS) : undefined
  const init: HTTPErrorInit = {
    status: response.status,
    operation: call.operation,
    errorCode: clean(said.errorCode),
    requestId: clean(said.requestId ?? response.headers.get('x-request-id')),
    serverMessage: clean(said.serverMessage),
    body: redacted === undefined ? undefined : truncate(redacted, MAX_BODY_CHARS),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  }
  const status = response.status
  if (status === 401 || status === 403) return new AuthenticationError(init)
  if (status === 429) return new RateLimitError(init)
  if (status === 404 && call.backendRoute) return new BackendNotFoundError(init)
  return new HTTPError(init)
}

function redirectError(call: Call, response: Response): HTTPError {
  const location = response.headers.get('location')
  let where = ''
  if (location) {
    try {
      where = ` to ${new URL(location, call.url).origin}`
    } catch {
      where = ' to an unreadable location'
    }
  }
  return new HTTPError({
    // An opaque redirect (browsers) has status 0: report it as a redirect all the same.
    status: response.status || 302,
    operation: call.operation,
    serverMessage: `redirect${where} not followed: ${call.withToken ? 'requests carrying the account token are never redirected' : 'the client follows no redirect'}`,
  })
}

/**
 * Sends one attempt and returns the parsed JSON body of a 2xx answer. Rejects with `signal.reason`
 * when the caller aborts, a TimeoutError when `timeoutMs` runs out (body included), a NetworkError
 * when no answer came, an HTTPError (or subclass) for a non-2xx, a ProtocolError for a 2xx body that
 * is not JSON.
 */
export async function attempt(call: Call, transport: Transport, signal: AbortSignal | undefined, timeoutMs: number): Promise<unknown> {
  const limit = deadline(signal, timeoutMs, call.operation)
  // Anything that fails after an abort is reported as the abort (caller's reason or TimeoutError).
  const fail = (error: unknown): unknown => (limit.signal.aborted ? limit.reason() : error)
  try {
    const doFetch = transport.fetch ?? globalThis.fetch
    let response: Response
    try {
      response = await doFetch(call.url, {
        method: call.method,
        headers: call.headers,
        body: call.body,
        // No redirect is followed, not even by status() (which carries no token): the client talks to
        // apiUrl and nowhere else. 'manual' rather than 'error' so that the error can say what
        // happened ('error' would hide it inside a generic "fetch failed").
        redirect: 'manual',
        signal: limit.signal,
      })
    } catch (error) {
      if (limit.signal.aborted) throw limit.reason()
      const code = errorCodes(error)[0]
      // The cause is the error that carries the code (undici wraps it: TypeError "fetch failed" → cause).
      const coded = codedError(error)
      // A fetch error may quote the request's headers: never let the token through in the cause.
      const message = (coded as Error | undefined)?.message
      const cleaned = typeof message === 'string' ? redact(message, transport.token) : undefined
      const cause = cleaned !== undefined && cleaned !== message ? Object.assign(new Error(cleaned), code ? { code } : {}) : coded
      throw new NetworkError(`${call.operation} could not reach ${originOf(call.url)}${code ? ` (${code})` : ''}`, { cause })
    }
    if (typeof response !== 'object' || response === null || typeof response.status !== 'number') {
      throw new ProtocolError(`${call.operation}: fetch did not return a Response`)
    }
    if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
      discard(response)
      throw redirectError(call, response)
    }
    if (!response.ok) {
      let text: string | undefined
      try {
        text = await readText(response, limit.signal, doFetch)
      } catch (error) {
        if (limit.signal.aborted) throw limit.reason()
        // The status is what matters; a body cut short is left out.
      }
      throw toHTTPError(call, response, transport.token, text)
    }
    const contentType = response.headers.get('content-type')
    // Lenient when the header is missing; a declared non-JSON type (an HTML page from a proxy, a
    // captive portal) is not the API.
    if (contentType !== null && !/[/+]json\b/i.test(contentType.split(';', 1)[0] ?? '')) {
      discard(response)
      throw new ProtocolError(
        `${call.operation}: expected a JSON response, got ${truncate(contentType, 100)} (status ${response.status})`,
        'content-type',
      )
    }
    let text: string
    try {
      text = await readText(response, limit.signal, doFetch)
    } catch (error) {
      if (limit.signal.aborted) throw limit.reason()
      throw new NetworkError(`${call.operation}: the response from ${originOf(call.url)} was cut short`, { cause: codedError(error) })
    }
    if (text.trim() === '') throw new ProtocolError(`${call.operation}: the response body is empty (status ${response.status})`, 'body')
    try {
      return JSON.parse(text)
    } catch (error) {
      // The parser quotes the body; keep the cause but never the token.
      const cause = new SyntaxError(redact((error as Error).message, transport.token))
      throw new ProtocolError(`${call.operation}: the response body is not valid JSON (status ${response.status})`, 'body', { cause })
    }
  } catch (error) {
    throw fail(error)
  } finally {
    limit.dispose()
  }
}
