import { afterEach, describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { JamsocketError } from '../../src/errors.js'
import { CONNECT_RESPONSE, TOKEN, json, recordingFetch } from './helpers.js'

const MISSING = 'Jamsocket.fromEnv(): JAMSOCKET_ACCOUNT, JAMSOCKET_TOKEN, and JAMSOCKET_SERVICE must be provided in the environment'

describe('Jamsocket.fromEnv(env): as upstream, plus JAMSOCKET_API_URL', () => {
  it('credentials from the environment, hosted API by default', () => {
    const jamsocket = Jamsocket.fromEnv({ JAMSOCKET_ACCOUNT: 'acme', JAMSOCKET_TOKEN: TOKEN, JAMSOCKET_SERVICE: 'editor' })
    expect(jamsocket.toJSON()).toEqual({ apiUrl: 'https://api.jamsocket.com', account: 'acme', service: 'editor', dev: false, token: '[redacted]' })
  })

  it('JAMSOCKET_API_URL overrides the API (trailing slash removed)', () => {
    const jamsocket = Jamsocket.fromEnv({ JAMSOCKET_ACCOUNT: 'a', JAMSOCKET_TOKEN: TOKEN, JAMSOCKET_SERVICE: 's', JAMSOCKET_API_URL: 'http://plane.internal:9191/' })
    expect(jamsocket.apiUrl).toBe('http://plane.internal:9191')
  })

  it("JAMSOCKET_DEV='true' → dev mode (credentials ignored), JAMSOCKET_DEV_PORT parsed as upstream", () => {
    expect(Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_TOKEN: TOKEN }).toJSON()).toMatchObject({ apiUrl: 'http://localhost:8080', account: '-', service: '-', dev: true })
    expect(Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: '9000' }).apiUrl).toBe('http://localhost:9000')
  })

  it('JAMSOCKET_DEV other than the string "true" is not dev mode', () => {
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: '1' })).toThrow(MISSING)
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: 'TRUE' })).toThrow(MISSING)
  })

  it('a non-numeric JAMSOCKET_DEV_PORT → the upstream port error, saying what it got', () => {
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: 'abc' })).toThrow('Jamsocket dev port must be an integer, got "abc" (from JAMSOCKET_DEV_PORT)')
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: '80abc' })).toThrow(TypeError)
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: '70000' })).toThrow(RangeError)
  })

  it('an empty JAMSOCKET_DEV_PORT (a bare `JAMSOCKET_DEV_PORT=` line) means the default port', () => {
    expect(Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: '' }).apiUrl).toBe('http://localhost:8080')
    expect(Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true', JAMSOCKET_DEV_PORT: ' ' }).apiUrl).toBe('http://localhost:8080')
  })

  for (const missing of ['JAMSOCKET_ACCOUNT', 'JAMSOCKET_TOKEN', 'JAMSOCKET_SERVICE']) {
    it(`missing or empty ${missing} → the upstream error text`, () => {
      const env: Record<string, string> = { JAMSOCKET_ACCOUNT: 'a', JAMSOCKET_TOKEN: TOKEN, JAMSOCKET_SERVICE: 's' }
      delete env[missing]
      expect(() => Jamsocket.fromEnv(env)).toThrow(MISSING)
      expect(() => Jamsocket.fromEnv({ ...env, [missing]: '' })).toThrow(MISSING)
    })
  }

  it('reads process.env by default and takes options', async () => {
    const saved = { ...process.env }
    try {
      process.env.JAMSOCKET_DEV = 'true'
      process.env.JAMSOCKET_DEV_PORT = '8181'
      const fetch = recordingFetch(json(CONNECT_RESPONSE))
      await Jamsocket.fromEnv(undefined, { fetch }).connect()
      expect(fetch.calls[0]!.url).toMatch(/^http:\/\/localhost:8181\//)
    } finally {
      for (const key of ['JAMSOCKET_DEV', 'JAMSOCKET_DEV_PORT']) if (saved[key] === undefined) delete process.env[key]
    }
  })
})

describe('constructor: URL selection and validation', () => {
  it('dev port must be an integer, with the upstream message', () => {
    expect(() => new Jamsocket({ dev: true, port: 80.5 })).toThrow('Jamsocket dev port must be an integer, got number')
    expect(() => new Jamsocket({ dev: true, port: '8080' as never })).toThrow('Jamsocket dev port must be an integer, got string')
    expect(() => new Jamsocket({ dev: true, port: 70_000 })).toThrow(RangeError)
  })

  it('missing credentials are a TypeError that names the field and never quotes values', () => {
    expect(() => new Jamsocket({ account: 'a', token: '', service: 's' })).toThrow(/token must be a non-empty string, got an empty string/)
    expect(() => new Jamsocket({ account: 'a', token: TOKEN } as never)).toThrow(/service must be a non-empty string, got undefined/)
    expect(() => new Jamsocket(undefined as never)).toThrow(/expected \{ account, token, service \} or \{ dev: true \}/)
    expect(() => new Jamsocket('acme' as never)).toThrow(TypeError)
  })

  it('a fetch error that quotes the token reaches the caller with the token redacted from its cause', async () => {
    const fetch = async () => {
      throw new TypeError(`Headers.append: "Bearer ${TOKEN}" is an invalid header value`)
    }
    const error = await new Jamsocket({ account: 'a', token: TOKEN, service: 's' }, { fetch, retry: false }).connect({ key: 'k' }).catch((e: unknown) => e)
    expect(String((error as Error).message)).not.toContain(TOKEN)
    expect(String(((error as Error).cause as Error).message)).not.toContain(TOKEN)
    expect(String(((error as Error).cause as Error).message)).toContain('[redacted]')
  })

  it('a token that cannot go in a header (a trailing newline from an env file) is refused up front, unquoted', () => {
    const bad = `${TOKEN}\n`
    let error: unknown
    try {
      new Jamsocket({ account: 'a', token: bad, service: 's' })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(TypeError)
    expect(String((error as Error).message)).toMatch(/cannot go in an HTTP header/)
    expect(String((error as Error).message)).not.toContain(TOKEN)
  })

  it('apiUrl must be an http(s) URL without credentials, query or fragment', () => {
    const base = { account: 'a', token: TOKEN, service: 's' }
    expect(() => new Jamsocket({ ...base, apiUrl: 'api.jamsocket.com' })).toThrow(/absolute http\(s\) URL/)
    expect(() => new Jamsocket({ ...base, apiUrl: 'ftp://x' })).toThrow(/http\(s\) URL, got ftp:/)
    expect(() => new Jamsocket({ ...base, apiUrl: 'https://u:p@x' })).toThrow(/credentials/)
    expect(() => new Jamsocket({ ...base, apiUrl: 'https://x/?a=1' })).toThrow(/query/)
    // A bare `?` or `#` parses as an empty query/fragment, but would end every request path.
    for (const apiUrl of ['https://x/?', 'https://x?', 'https://x/#', 'https://x/plane#', 'https://x/?#']) {
      expect(() => new Jamsocket({ ...base, apiUrl }), apiUrl).toThrow(TypeError)
    }
    expect(new Jamsocket({ ...base, apiUrl: '' }).apiUrl).toBe('https://api.jamsocket.com')
  })

  it('options are validated', () => {
    const base = { account: 'a', token: TOKEN, service: 's' }
    expect(() => new Jamsocket(base, { fetch: 'x' as never })).toThrow(/fetch must be a function/)
    expect(() => new Jamsocket(base, { timeoutMs: -5 })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { timeoutMs: Infinity })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { retry: -1 })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { retry: 1.5 })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { retry: true as never })).toThrow(TypeError)
    expect(() => new Jamsocket(base, { retry: { minTimeoutMs: -1 } })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { retry: { retries: Number.NaN } })).toThrow(RangeError)
    expect(() => new Jamsocket(base, { dangerouslyAllowBrowser: 'yes' as never })).toThrow(TypeError)
    expect(() => new Jamsocket(base, 'x' as never)).toThrow(/options must be an object/)
  })

  it('options are accepted inline; the second argument wins', async () => {
    const inline = recordingFetch(json(CONNECT_RESPONSE))
    const second = recordingFetch(json(CONNECT_RESPONSE))
    await new Jamsocket({ dev: true, fetch: inline }).connect()
    expect(inline.calls).toHaveLength(1)
    await new Jamsocket({ dev: true, fetch: inline }, { fetch: second }).connect()
    expect(inline.calls).toHaveLength(1)
    expect(second.calls).toHaveLength(1)
  })
})

describe('browser guard: the token-holding client refuses browser-like globals', () => {
  const g = globalThis as Record<string, unknown>
  afterEach(() => {
    delete g.window
    delete g.document
  })

  it('throws in a page unless dangerouslyAllowBrowser: true', () => {
    g.window = {}
    g.document = {}
    const error = (() => {
      try {
        new Jamsocket({ account: 'a', token: TOKEN, service: 's' })
      } catch (e) {
        return e
      }
    })()
    expect(JamsocketError.isInstance(error)).toBe(true)
    expect((error as Error).message).toMatch(/refusing to run in a browser/)
    expect(String(error)).not.toContain(TOKEN)
    expect(() => new Jamsocket({ account: 'a', token: TOKEN, service: 's', dangerouslyAllowBrowser: true })).not.toThrow()
    expect(() => Jamsocket.fromEnv({ JAMSOCKET_DEV: 'true' }, { dangerouslyAllowBrowser: true })).not.toThrow()
  })

  it('Node without DOM globals is not a browser', () => {
    expect(() => new Jamsocket({ dev: true })).not.toThrow()
  })
})
