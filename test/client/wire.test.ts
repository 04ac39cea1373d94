import { describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { BackendHandle } from '../../src/status/handle.js'
import { CONNECT_RESPONSE, TOKEN, json, recordingFetch } from './helpers.js'

const prod = (fetch: ReturnType<typeof recordingFetch>, apiUrl?: string) =>
  new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl }, { fetch })

describe('connect(): exact request', () => {
  it('prod: POST /v2/service/{account}/{service}/connect?{cache-buster} with Bearer, JSON headers and the request body', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await prod(fetch).connect({ key: 'doc-42', user: 'ada', auth: { role: 'editor' }, spawn: { tag: 'v2', max_idle_seconds: 60 } })
    expect(fetch.calls).toHaveLength(1)
    const [call] = fetch.calls
    expect(call!.method).toBe('POST')
    expect(call!.url).toMatch(/^https:\/\/api\.jamsocket\.com\/v2\/service\/acme\/editor\/connect\?[a-z0-9]+$/)
    expect(call!.headers).toEqual({
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/json',
      accept: 'application/json',
    })
    expect(JSON.parse(call!.body!)).toEqual({ key: 'doc-42', user: 'ada', auth: { role: 'editor' }, spawn: { tag: 'v2', max_idle_seconds: 60 } })
    expect(call!.redirect).toBe('manual')
  })

  it('sends {} when there is no request', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await prod(fetch).connect()
    expect(fetch.calls[0]!.body).toBe('{}')
  })

  it('uses a fresh cache-buster on every call, a bare query key as upstream', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    const jamsocket = prod(fetch)
    await jamsocket.connect()
    await jamsocket.connect()
    const queries = fetch.calls.map((c) => new URL(c.url).search)
    expect(queries[0]).toMatch(/^\?[a-z0-9]+$/)
    expect(queries[0]).not.toBe(queries[1])
  })

  it('URL-encodes account and service path segments', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await new Jamsocket({ account: 'a/b', token: TOKEN, service: 'x y?', apiUrl: 'https://plane.example' }, { fetch }).connect()
    expect(fetch.calls[0]!.url).toMatch(/^https:\/\/plane\.example\/v2\/service\/a%2Fb\/x%20y%3F\/connect\?/)
  })

  it('strips trailing slashes from apiUrl and keeps a path prefix', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await prod(fetch, 'https://gw.example/jamsocket//').connect()
    expect(fetch.calls[0]!.url).toMatch(/^https:\/\/gw\.example\/jamsocket\/v2\/service\/acme\/editor\/connect\?/)
  })

  it('dev: http://localhost:8080, account/service/token "-"', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await new Jamsocket({ dev: true }, { fetch }).connect({ key: 'k' })
    const [call] = fetch.calls
    expect(call!.url).toMatch(/^http:\/\/localhost:8080\/v2\/service\/-\/-\/connect\?[a-z0-9]+$/)
    expect(call!.headers.authorization).toBe('Bearer -')
    expect(call!.body).toBe('{"key":"k"}')
  })

  it('dev: honours port; port 0 means the default, as upstream', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await new Jamsocket({ dev: true, port: 9191 }, { fetch }).connect()
    await new Jamsocket({ dev: true, port: 0 }, { fetch }).connect()
    expect(fetch.calls[0]!.url).toMatch(/^http:\/\/localhost:9191\//)
    expect(fetch.calls[1]!.url).toMatch(/^http:\/\/localhost:8080\//)
  })

  it('returns a BackendHandle carrying the ConnectResponse as received', async () => {
    const fetch = recordingFetch(json({ ...CONNECT_RESPONSE, extra_field: 1 }))
    const handle = await prod(fetch).connect({ key: 'doc-42' })
    expect(handle).toBeInstanceOf(BackendHandle)
    expect(handle.backend_id).toBe('b1x2y3')
    expect(JSON.parse(JSON.stringify(handle))).toEqual(CONNECT_RESPONSE)
  })
})

describe('connect(): request validation up front (no request sent)', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a string', 'doc-42', /got a string: did you mean connect\(\{ key \}\)/],
    ['a number', 42, /takes a ConnectRequest object/],
    ['an array', [], /got an array/],
    ['a typo of a field', { keys: 'x' }, /request\.keys is not a connect option; did you mean request\.key\?/],
    ['camelCase spawn option', { spawn: { maxIdleSeconds: 5 } }, /did you mean request\.spawn\.max_idle_seconds\?/],
    ['a non-string key', { key: 42 }, /request\.key must be a non-empty string, got 42/],
    ['an empty key', { key: '' }, /request\.key must be a non-empty string, got an empty string/],
    ['a negative limit', { spawn: { lifetime_limit_seconds: -1 } }, /lifetime_limit_seconds must be a non-negative number/],
    ['a non-string env value', { spawn: { executable: { env: { A: 1 } } } }, /request\.spawn\.executable\.env\.A must be a string/],
    ['auth that is not an object', { auth: 'x' }, /request\.auth must be a plain object/],
  ]
  for (const [what, request, message] of cases) {
    it(`rejects ${what} with a TypeError`, async () => {
      const fetch = recordingFetch(json(CONNECT_RESPONSE))
      const error = await prod(fetch).connect(request as never).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toMatch(message)
      expect(fetch.calls).toHaveLength(0)
    })
  }

  it('never quotes a string value in the message (it could be a secret)', async () => {
    const error = await prod(recordingFetch(json(CONNECT_RESPONSE))).connect(TOKEN as never).catch((e: unknown) => e)
    expect(String(error)).not.toContain(TOKEN)
  })

  it('accepts spawn: false and explicit undefined fields', async () => {
    const fetch = recordingFetch(json(CONNECT_RESPONSE))
    await prod(fetch).connect({ key: 'k', spawn: false, user: undefined })
    expect(fetch.calls[0]!.body).toBe('{"key":"k","spawn":false}')
  })
})

describe('status(): exact request', () => {
  it('GET /v2/backend/{id}/status?{cache-buster} with no Authorization header', async () => {
    const fetch = recordingFetch(json({ status: 'ready', time: 1723731117010 }))
    const state = await prod(fetch).status('b 1')
    expect(state).toEqual({ status: 'ready', time: '2024-08-15T14:11:57.010Z' })
    const [call] = fetch.calls
    expect(call!.method).toBe('GET')
    expect(call!.url).toMatch(/^https:\/\/api\.jamsocket\.com\/v2\/backend\/b%201\/status\?[a-z0-9]+$/)
    expect(call!.headers.authorization).toBeUndefined()
    expect(JSON.stringify(call)).not.toContain(TOKEN)
    expect(call!.body).toBeUndefined()
  })

  it('dev: against localhost without a token', async () => {
    const fetch = recordingFetch(json({ status: 'terminated', time: '2024-08-15T14:20:00.000Z', termination_reason: 'external' }))
    const state = await new Jamsocket({ dev: true, port: 7777 }, { fetch }).status('b1')
    expect(state.status).toBe('terminated')
    expect(fetch.calls[0]!.url).toMatch(/^http:\/\/localhost:7777\/v2\/backend\/b1\/status\?/)
    expect(fetch.calls[0]!.headers.authorization).toBeUndefined()
  })

  it('rejects a missing id or a handle passed by mistake, with a hint', async () => {
    const jamsocket = prod(recordingFetch(json({})))
    await expect(jamsocket.status('')).rejects.toThrow(/status\(\) takes a backend id string, got an empty string/)
    await expect(jamsocket.status(CONNECT_RESPONSE as never)).rejects.toThrow(/did you mean status\(handle\.backend_id\)\?/)
  })
})

describe('terminate(): exact request', () => {
  it('POST /v2/backend/{id}/terminate with Bearer and {"hard":false} by default', async () => {
    const fetch = recordingFetch(json({ status: 'ok' }))
    await expect(prod(fetch).terminate('b1')).resolves.toEqual({ status: 'ok' })
    const [call] = fetch.calls
    expect(call!.method).toBe('POST')
    expect(call!.url).toBe('https://api.jamsocket.com/v2/backend/b1/terminate')
    expect(call!.headers).toEqual({ authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', accept: 'application/json' })
    expect(call!.body).toBe('{"hard":false}')
    expect(call!.redirect).toBe('manual')
  })

  it('sends {"hard":true} when asked, in dev mode too', async () => {
    const fetch = recordingFetch(json({ status: 'ok' }))
    await new Jamsocket({ dev: true }, { fetch }).terminate('b1', { hard: true })
    expect(fetch.calls[0]!.url).toBe('http://localhost:8080/v2/backend/b1/terminate')
    expect(fetch.calls[0]!.headers.authorization).toBe('Bearer -')
    expect(fetch.calls[0]!.body).toBe('{"hard":true}')
  })

  it('rejects a non-boolean hard', async () => {
    await expect(prod(recordingFetch(json({ status: 'ok' }))).terminate('b1', { hard: 'yes' as never })).rejects.toThrow(TypeError)
  })
})

describe('handle(): wraps a ConnectResponse without a request', () => {
  it('validates it and makes no request', () => {
    const fetch = recordingFetch(json({}))
    const handle = prod(fetch).handle(CONNECT_RESPONSE)
    expect(handle).toBeInstanceOf(BackendHandle)
    expect(handle.toJSON()).toEqual(CONNECT_RESPONSE)
    expect(fetch.calls).toHaveLength(0)
  })

  it('a null ready_url (as a server may send it) stays null, in the handle and in toJSON()', async () => {
    const received = { ...CONNECT_RESPONSE, ready_url: null }
    expect(prod(recordingFetch(json({}))).handle(received).toJSON()).toEqual(received)
    const connected = await prod(recordingFetch(json(received))).connect({ key: 'k' })
    expect(connected.ready_url).toBeNull()
    expect(JSON.parse(JSON.stringify(connected))).toEqual(received)
  })

  it('throws ProtocolError naming the field of a malformed one', () => {
    expect(() => prod(recordingFetch(json({}))).handle({ ...CONNECT_RESPONSE, backend_id: 7 } as never)).toThrow(
      expect.objectContaining({ name: 'ProtocolError', field: 'backend_id' }),
    )
  })
})
