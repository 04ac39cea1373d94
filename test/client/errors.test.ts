import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import {
  AuthenticationError,
  BackendNotFoundError,
  HTTPError,
  JamsocketError,
  NetworkError,
  ProtocolError,
  RateLimitError,
  TimeoutError,
} from '../../src/errors.js'
import { CONNECT_RESPONSE, TOKEN, fail, hangingFetch, json, networkFailure, recordingFetch } from './helpers.js'

// No retries here: these tests are about what one answer means.
const client = (fetch: ReturnType<typeof recordingFetch> | ReturnType<typeof hangingFetch>) =>
  new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' }, { fetch, retry: false })


describe('error bodies: both shapes are read', () => {
  it('hosted {"error":{status,code,message,id}} → errorCode, requestId and the message', async () => {
    const body = { error: { status: 409, code: 'KeyHeldByOtherService', message: 'key is held', id: 'req_123' } }
    const error = (await fail(client(recordingFetch(json(body, 409))).connect({ key: 'k' }))) as HTTPError
    expect(HTTPError.isInstance(error)).toBe(true)
    expect(error.code).toBe(409)
    expect(error.status).toBe(409)
    expect(error.errorCode).toBe('KeyHeldByOtherService')
    expect(error.requestId).toBe('req_123')
    expect(error.message).toBe('connect() failed with 409 KeyHeldByOtherService: key is held')
    expect(error.body).toBe(JSON.stringify(body))
  })

  it('Plane {"id","kind","message"} → errorCode from kind, requestId from id', async () => {
    const body = { id: 'err-7f3', kind: 'NotFound', message: 'Backend does not exist' }
    const error = (await fail(client(recordingFetch(json(body, 404))).status('b1'))) as HTTPError
    expect(error.errorCode).toBe('NotFound')
    expect(error.requestId).toBe('err-7f3')
    expect(error.message).toBe('status() failed with 404 NotFound: Backend does not exist')
  })

  it('a short plain-text body is the message; an HTML page is not quoted', async () => {
    const text = new Response('Failed to parse the request body as JSON', { status: 400, headers: { 'content-type': 'text/plain' } })
    const error = await fail(client(recordingFetch(text)).terminate('b1'))
    expect(error.message).toBe('terminate() failed with 400 Failed to parse the request body as JSON')
    const html = new Response('<html><body>Bad gateway</body></html>', { status: 502, headers: { 'content-type': 'text/html' } })
    const error2 = (await fail(client(recordingFetch(html)).status('b1'))) as HTTPError
    expect(error2.message).toBe('status() failed with 502')
    expect(error2.body).toContain('Bad gateway')
  })

  it('the kept body text is truncated to at most 500 characters', async () => {
    const long = 'x'.repeat(5_000)
    const error = (await fail(client(recordingFetch(json({ error: { message: long } }, 500))).connect({ key: 'k' }))) as HTTPError
    expect(error.body!.length).toBe(500)
    expect(error.body!.endsWith('…')).toBe(true)
    expect(error.message.length).toBeLessThan(300)
  })
})

describe('status codes map to error classes', () => {
  const cases: Array<[number, string, (e: unknown) => boolean]> = [
    [401, 'AuthenticationError', AuthenticationError.isInstance],
    [403, 'AuthenticationError', AuthenticationError.isInstance],
    [429, 'RateLimitError', RateLimitError.isInstance],
    [500, 'HTTPError', HTTPError.isInstance],
  ]
  for (const [status, name, guard] of cases) {
    it(`${status} → ${name} (an HTTPError with code ${status})`, async () => {
      const error = (await fail(client(recordingFetch(json({}, status))).connect({ key: 'k' }))) as HTTPError
      expect(guard(error)).toBe(true)
      expect(error.name).toBe(name)
      expect(error).toBeInstanceOf(HTTPError)
      expect(error.code).toBe(status)
    })
  }

  it('429 carries Retry-After as retryAfterMs', async () => {
    const error = (await fail(client(recordingFetch(json({}, 429, { 'retry-after': '7' }))).connect({ key: 'k' }))) as RateLimitError
    expect(error.retryAfterMs).toBe(7000)
  })

  it('404 on status() and terminate() → BackendNotFoundError; 404 on connect() is a plain HTTPError', async () => {
    const notFound = () => recordingFetch(json({ id: 'x', kind: 'NotFound', message: 'Backend does not exist' }, 404))
    expect(BackendNotFoundError.isInstance(await fail(client(notFound()).status('b1')))).toBe(true)
    expect(BackendNotFoundError.isInstance(await fail(client(notFound()).terminate('b1')))).toBe(true)
    const connectError = await fail(client(notFound()).connect({ key: 'k' }))
    expect(HTTPError.isInstance(connectError) && !BackendNotFoundError.isInstance(connectError)).toBe(true)
  })

  it('terminate of an already-terminated backend keeps the hosted BackendNotRunning code', async () => {
    const body = { error: { status: 400, code: 'BackendNotRunning', message: 'Backend is not running', id: 'r1' } }
    const error = (await fail(client(recordingFetch(json(body, 400))).terminate('b1'))) as HTTPError
    expect(error.errorCode).toBe('BackendNotRunning')
  })

  it('a network failure → NetworkError whose cause carries the code, and the code in the message', async () => {
    const failure = networkFailure('ECONNRESET')
    const error = await fail(client(recordingFetch(failure)).status('b1'))
    expect(NetworkError.isInstance(error)).toBe(true)
    expect(error.cause).toBe(failure.cause)
    expect((error.cause as { code?: string }).code).toBe('ECONNRESET')
    expect(error.message).toBe('status() could not reach https://api.jamsocket.com (ECONNRESET)')
  })
})

describe('a 2xx that breaks the contract → ProtocolError', () => {
  const cases: Array<[string, () => Response, RegExp]> = [
    ['malformed JSON', () => new Response('{"backend_id": ', { headers: { 'content-type': 'application/json' } }), /not valid JSON/],
    ['an HTML content type', () => new Response('<html></html>', { headers: { 'content-type': 'text/html; charset=utf-8' } }), /expected a JSON response, got text\/html/],
    ['a text/plain content type', () => new Response('{}', { headers: { 'content-type': 'text/plain' } }), /expected a JSON response/],
    ['an empty body', () => new Response('', { headers: { 'content-type': 'application/json' } }), /body is empty/],
    ['a 204 without a body', () => new Response(null, { status: 204 }), /body is empty/],
    ['a connect response missing a field', () => json({ ...CONNECT_RESPONSE, token: undefined }), /token is not a non-empty string/],
  ]
  for (const [what, response, message] of cases) {
    it(`connect(): ${what}`, async () => {
      const error = await fail(client(recordingFetch(response())).connect({ key: 'k' }))
      expect(ProtocolError.isInstance(error)).toBe(true)
      expect(error.message).toMatch(message)
    })
  }

  it('status(): a state that is not a BackendState', async () => {
    const error = await fail(client(recordingFetch(json({ status: 'exploded', time: 1 }))).status('b1'))
    expect(ProtocolError.isInstance(error) && (error as ProtocolError).field).toBe('status')
  })

  it('terminate(): a body other than {"status":"ok"}', async () => {
    const error = await fail(client(recordingFetch(json({ status: 'maybe' }))).terminate('b1'))
    expect(ProtocolError.isInstance(error)).toBe(true)
  })

  it('reads a JSON body without a content type, and +json types (lenient reading)', async () => {
    const bare = new Response(JSON.stringify(CONNECT_RESPONSE))
    bare.headers.delete('content-type')
    await expect(client(recordingFetch(bare)).connect({ key: 'k' })).resolves.toMatchObject({ backend_id: 'b1x2y3' })
    const vendor = new Response(JSON.stringify({ status: 'ok' }), { headers: { 'content-type': 'application/vnd.api+json; charset=utf-8' } })
    await expect(client(recordingFetch(vendor)).terminate('b1')).resolves.toEqual({ status: 'ok' })
  })
})

describe('the token never appears on any error surface', () => {
  const surfaces = (error: unknown): string[] => [
    String(error),
    (error as Error).message,
    (error as Error).stack ?? '',
    JSON.stringify(error),
    JSON.stringify((error as HTTPError).body ?? ''),
    inspect(error, { depth: Infinity, showHidden: true }),
    inspect((error as Error).cause, { depth: Infinity, showHidden: true }),
  ]

  const echo = (status: number, contentType: string) => (request: { headers: Record<string, string> }) =>
    new Response(
      contentType === 'application/json'
        ? JSON.stringify({ error: { code: request.headers.authorization, message: `bad ${request.headers.authorization}`, id: TOKEN } })
        : `invalid token ${TOKEN} (${encodeURIComponent(TOKEN)})`,
      { status, headers: { 'content-type': contentType } },
    )

  const cases: Array<[string, Parameters<typeof recordingFetch>[0]]> = [
    ['401 echoing the token in a JSON body', echo(401, 'application/json')],
    ['500 echoing the token in a text body', echo(500, 'text/plain')],
    ['2xx invalid JSON quoting the token', () => new Response(`{"t":"${TOKEN}"`, { headers: { 'content-type': 'application/json' } })],
    ['a network failure', networkFailure('ECONNREFUSED')],
    ['a redirect', () => new Response(null, { status: 302, headers: { location: `https://evil.example/?t=${TOKEN}` } })],
  ]
  for (const [what, answer] of cases) {
    it(`${what}`, async () => {
      const error = await fail(client(recordingFetch(answer)).connect({ key: 'k' }))
      expect(JamsocketError.isInstance(error)).toBe(true)
      for (const surface of surfaces(error)) expect(surface).not.toContain(TOKEN)
    })
  }

  // Servers that echo the token inside JSON may escape it: `\/` (PHP, some Java), `\"`, `\u00xx`
  // (any character), or escape it twice over when the JSON is itself quoted in JSON.
  const escapedForms: Array<[string, string, (token: string) => string]> = [
    ['with "\\/"', 'abc/def123/ghi', (t) => t.replaceAll('/', '\\/')],
    ['with \\"', 'abc"def123"ghi', (t) => JSON.stringify(t).slice(1, -1)],
    ['as \\u00xx, every character', 'sk_live_abc123', (t) => [...t].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
    ['as \\u00XX (upper case), some characters', 'sk_live_abc123', (t) => t.replace(/[_i]/g, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)],
    ['escaped twice (JSON in a JSON string)', 'abc/def123/ghi', (t) => t.replaceAll('/', '\\\\\\/')],
    ['percent-encoded in upper and lower case', 'abc/def123=', (t) => encodeURIComponent(t).replace('%2F', '%2f')],
  ]
  for (const [what, token, escape] of escapedForms) {
    it(`a token echoed JSON-escaped (${what}) is redacted from error.body and JSON.stringify(error)`, async () => {
      const body = `{"error":{"code":"Unauthorized","message":"token ${escape(token)} is not valid"}}`
      expect(body).not.toContain(token)
      const jamsocket = new Jamsocket({ account: 'acme', token, service: 'editor' }, { fetch: recordingFetch(new Response(body, { status: 401 })), retry: false })
      const error = (await fail(jamsocket.connect({ key: 'k' }))) as HTTPError
      expect(error.body).toContain('[redacted]')
      expect(error.body).not.toContain(escape(token))
      expect(JSON.stringify(error)).not.toContain(escape(token))
      expect(JSON.stringify(error)).not.toContain(JSON.stringify(token).slice(1, -1))
      expect(error.message).not.toContain(token)
      expect(error.message).toContain('[redacted]')
    })
  }

  it('a timeout', async () => {
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' }, { fetch: hangingFetch(), retry: false, timeoutMs: 1 })
    const error = await fail(jamsocket.connect({ key: 'k' }))
    expect(TimeoutError.isInstance(error)).toBe(true)
    for (const surface of surfaces(error)) expect(surface).not.toContain(TOKEN)
  })

  it('the client itself: util.inspect, console formatting and JSON.stringify redact it', () => {
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' })
    for (const text of [inspect(jamsocket, { depth: Infinity, showHidden: true }), JSON.stringify(jamsocket), `${String(jamsocket)}`]) {
      expect(text).not.toContain(TOKEN)
    }
    expect(JSON.parse(JSON.stringify(jamsocket))).toEqual({
      apiUrl: 'https://api.jamsocket.com',
      account: 'acme',
      service: 'editor',
      dev: false,
      token: '[redacted]',
    })
    expect(Object.keys(jamsocket)).toEqual([])
  })
})
