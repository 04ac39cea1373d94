/** Against real node:http servers on 127.0.0.1: redirects, refused connections, resets, stalls. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { HTTPError, NetworkError, TimeoutError } from '../../src/errors.js'
import type { FetchLike } from '../../src/abort.js'
import { CONNECT_RESPONSE, TOKEN, refusedPort, startServer } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function server(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = []
  const s = await startServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      handler(req, res, body)
    })
  })
  cleanups.push(s.close)
  return Object.assign(s, { requests })
}

/** The real global fetch, counting calls. */
function counting(): FetchLike & { calls: number } {
  const fetch = Object.assign((input: string | URL, init?: RequestInit) => {
    fetch.calls++
    return globalThis.fetch(input, init)
  }, { calls: 0 })
  return fetch
}

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

describe('the token never leaves the API origin', () => {
  it('a redirect to another origin is not followed: the other origin gets no request and no token', async () => {
    const other = await server((_req, res) => sendJson(res, 200, CONNECT_RESPONSE))
    const api = await server((_req, res) => {
      res.writeHead(307, { location: `${other.url}/v2/service/acme/editor/connect` })
      res.end()
    })
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl: api.url }, { retry: false })
    const error = await jamsocket.connect({ key: 'k' }).catch((e: unknown) => e)
    expect(HTTPError.isInstance(error) && error.status).toBe(307)
    expect((error as Error).message).toContain(`redirect to ${other.url} not followed`)
    expect(String(error)).not.toContain(TOKEN)
    expect(api.requests).toHaveLength(1)
    expect(api.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(other.requests).toHaveLength(0)
  })

  it('status() does not follow a redirect either: HTTPError naming where it pointed, the other origin gets no request', async () => {
    const other = await server((_req, res) => sendJson(res, 200, { status: 'ready', time: '2024-08-15T14:11:55.300Z' }))
    const api = await server((_req, res) => {
      res.writeHead(301, { location: `${other.url}/v2/backend/b1/status` })
      res.end()
    })
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl: api.url }, { retry: { minTimeoutMs: 0 } })
    const error = await jamsocket.status('b1').catch((e: unknown) => e)
    expect(HTTPError.isInstance(error) && error.status).toBe(301)
    expect((error as Error).message).toContain(`redirect to ${other.url} not followed`)
    expect(api.requests).toHaveLength(1)
    expect(other.requests).toHaveLength(0)
  })

  it('terminate() does not follow a redirect either, and it is not retried', async () => {
    const api = await server((_req, res) => {
      res.writeHead(302, { location: 'https://elsewhere.example/' })
      res.end()
    })
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl: api.url }, { retry: { minTimeoutMs: 0 } })
    await expect(jamsocket.terminate('b1')).rejects.toMatchObject({ status: 302 })
    expect(api.requests).toHaveLength(1)
  })
})

describe('on a real server', () => {
  it('the server receives the exact connect request', async () => {
    const api = await server((_req, res) => sendJson(res, 200, CONNECT_RESPONSE))
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl: `${api.url}/` })
    await jamsocket.connect({ key: 'doc-42' })
    const [request] = api.requests
    expect(request!.method).toBe('POST')
    expect(request!.url).toMatch(/^\/v2\/service\/acme\/editor\/connect\?[a-z0-9]+$/)
    expect(request!.headers.authorization).toBe(`Bearer ${TOKEN}`)
    expect(request!.headers['content-type']).toBe('application/json')
    expect(request!.headers.accept).toBe('application/json')
    expect(request!.body).toBe('{"key":"doc-42"}')
  })

  it('a keyless connect to a refused port is retried (the request never left), then NetworkError', async () => {
    const port = await refusedPort()
    const fetch = counting()
    const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor', apiUrl: `http://127.0.0.1:${port}` }, { fetch, retry: { minTimeoutMs: 0 } })
    const error = await jamsocket.connect().catch((e: unknown) => e)
    expect(NetworkError.isInstance(error)).toBe(true)
    expect((error as Error).message).toBe(`connect() could not reach http://127.0.0.1:${port} (ECONNREFUSED)`)
    expect(((error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED')
    expect(fetch.calls).toBe(3)
  })

  it('a connection reset: a keyless connect is not retried, a keyed one is', async () => {
    const api = await server((req) => req.socket.destroy())
    const keyless = counting()
    const options = { retry: { minTimeoutMs: 0 } }
    await expect(
      new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url }, { ...options, fetch: keyless }).connect(),
    ).rejects.toMatchObject({ name: 'NetworkError' })
    expect(keyless.calls).toBe(1)
    const keyed = counting()
    await expect(
      new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url }, { ...options, fetch: keyed }).connect({ key: 'k' }),
    ).rejects.toMatchObject({ name: 'NetworkError' })
    expect(keyed.calls).toBe(3)
  })

  it('a body cut short (the connection closes mid-body) → NetworkError whose cause carries the code', async () => {
    const api = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
      res.write('{"status":', () => res.socket!.destroy())
    })
    const jamsocket = new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url }, { retry: false })
    const error = await jamsocket.status('b1').catch((e: unknown) => e)
    expect(NetworkError.isInstance(error) && error.message).toMatch(/was cut short/)
    expect(((error as Error).cause as { code?: unknown }).code).toEqual(expect.any(String))
  })

  it('a body that stalls after the headers times out with TimeoutError', async () => {
    const api = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"status":')
    })
    const jamsocket = new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url }, { retry: false, timeoutMs: 50 })
    const error = await jamsocket.status('b1').catch((e: unknown) => e)
    expect(TimeoutError.isInstance(error)).toBe(true)
  })

  it('an abort in the middle of the body rejects with the reason', async () => {
    const controller = new AbortController()
    const api = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"status":', () => controller.abort('bye'))
    })
    const jamsocket = new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url }, { retry: false })
    await expect(jamsocket.status('b1', { signal: controller.signal })).rejects.toBe('bye')
  })

  it('status() sends no Authorization header to the server', async () => {
    const api = await server((_req, res) => sendJson(res, 200, { status: 'loading', time: '2024-08-15T14:11:55.300Z' }))
    const jamsocket = new Jamsocket({ account: 'a', token: TOKEN, service: 's', apiUrl: api.url })
    await expect(jamsocket.status('b1')).resolves.toEqual({ status: 'loading', time: '2024-08-15T14:11:55.300Z' })
    expect(api.requests[0]!.headers.authorization).toBeUndefined()
    expect(api.requests[0]!.url).toMatch(/^\/v2\/backend\/b1\/status\?[a-z0-9]+$/)
  })
})
