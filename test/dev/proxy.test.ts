/**
 * The proxy end to end: token routing and stripping, identity headers, held requests, WebSockets,
 * CORS, and resilience to backends that misbehave.
 */
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { Jamsocket } from '../../src/index.js'
import { connectRaw, eventually, rawRequest, startServer, statusOf, waitStatus } from './helpers.js'

interface Echo {
  method: string
  url: string
  headers: Record<string, string>
  body: string
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.once('open', () => resolve(socket))
    socket.once('error', reject)
  })
}

function roundTrip(socket: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('message', (data) => resolve(String(data)))
    socket.send(text)
  })
}

describe('proxy', () => {
  it('strips the token, passes identity headers, and drops the ones a client spoofs', async () => {
    const server = await startServer('listen')
    const jamsocket = new Jamsocket({ dev: true, port: server.port })
    const handle = await jamsocket.connect({ key: 'who', user: 'ada', auth: { role: 'editor' } })
    await handle.waitUntilReady()
    expect(handle.url).toBe(`${server.proxyUrl}/${handle.token}/`)
    const response = await fetch(`${handle.url}docs/1?x=2`, {
      method: 'POST',
      body: 'payload',
      headers: { 'X-Verified-Username': 'mallory', 'x-verified-user-data': '{"role":"admin"}', 'x-verified-secret': 'guess' },
    })
    expect(response.headers.get('x-plane-backend-id')).toBe(handle.backend_id)
    const echo = (await response.json()) as Echo
    expect(echo).toMatchObject({ method: 'POST', url: '/docs/1?x=2', body: 'payload' })
    expect(echo.headers['x-verified-username']).toBe('ada')
    expect(echo.headers['x-verified-user-data']).toBe('{"role":"editor"}')
    expect(echo.headers['x-verified-backend']).toBe(handle.backend_id)
    expect(echo.headers['x-verified-secret']).toBe(handle.secret_token)
    expect(echo.headers['x-verified-path']).toBe(`/${handle.token}/docs/1?x=2`)
    // `/{token}` and `/{token}?q` reach `/` and `/?q`.
    expect(((await (await fetch(`${server.proxyUrl}/${handle.token}`)).json()) as Echo).url).toBe('/')
    expect(((await (await fetch(`${server.proxyUrl}/${handle.token}?a=1`)).json()) as Echo).url).toBe('/?a=1')
    // Without a user, no username header; user data is always there.
    const anonymous = await jamsocket.connect({ key: 'who' })
    const anon = (await (await fetch(anonymous.url)).json()) as Echo
    expect(anon.headers).not.toHaveProperty('x-verified-username')
    expect(anon.headers['x-verified-user-data']).toBe('{}')
    handle.close()
    anonymous.close()
  })

  it('adds CORS headers unless the backend sets its own', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'cors' })
    await waitStatus(server, cr.backend_id, 'ready')
    const plain = await fetch(cr.url)
    expect(plain.headers.get('access-control-allow-origin')).toBe('*')
    expect(plain.headers.get('access-control-allow-headers')).toBe('*, Authorization')
    const own = await fetch(`${cr.url}cors`)
    expect(own.headers.get('access-control-allow-origin')).toBe('https://example.com')
    expect(own.headers.get('access-control-allow-methods')).toBeNull()
  })

  it('holds a request to a starting backend and answers it once ready', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'held', spawn: { executable: { env: { FIXTURE_DELAY_MS: '300' } } } })
    const pending = fetch(`${cr.url}early`)
    expect((await statusOf(server, cr.backend_id)).status).not.toBe('ready')
    const response = await pending
    expect(response.status).toBe(200)
    expect(((await response.json()) as Echo).url).toBe('/early')
  })

  it('answers a held request with 504 after holdMs, and with 410 when the backend ends first', async () => {
    const slow = await startServer('never-listens', { holdMs: 100 })
    const cr = await connectRaw(slow, { key: 'never' })
    expect((await fetch(cr.url)).status).toBe(504)
    const crashing = await startServer('crash')
    const doomed = await connectRaw(crashing, { key: 'doomed' })
    const response = await fetch(doomed.url)
    expect(response.status).toBe(410)
  })

  it('answers unknown tokens and tokens of terminating or ended backends with 410', async () => {
    const server = await startServer('ignore-sigterm', { graceMs: 5000 })
    expect((await fetch(`${server.proxyUrl}/not-a-token/`)).status).toBe(410)
    expect((await fetch(`${server.proxyUrl}/`)).status).toBe(410)
    const cr = await connectRaw(server, { key: 'going' })
    await waitStatus(server, cr.backend_id, 'ready')
    expect((await fetch(cr.url)).status).toBe(200)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST' })
    expect((await statusOf(server, cr.backend_id)).status).toBe('terminating')
    expect((await fetch(cr.url)).status).toBe(410)
    // Connecting the key while it terminates returns the same backend (as Plane), whose token is refused.
    const again = await connectRaw(server, { key: 'going' })
    expect(again).toMatchObject({ backend_id: cr.backend_id, spawned: false, status: 'terminating' })
    expect((await fetch(again.url)).status).toBe(410)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST', body: '{"hard":true}' })
    await waitStatus(server, cr.backend_id, 'terminated')
    expect((await fetch(cr.url)).status).toBe(410)
  })

  it('passes WebSocket upgrades through (token stripped) and sends messages both ways', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'ws' })
    await waitStatus(server, cr.backend_id, 'ready')
    const socket = new WebSocket(`${cr.url.replace('http', 'ws')}room?x=1`)
    const upgradePath = new Promise<unknown>((resolve) => socket.once('upgrade', (res) => resolve(res.headers['x-echo-path'])))
    await new Promise((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    const upgrade = await upgradePath
    expect(upgrade).toBe('/room?x=1')
    expect(await roundTrip(socket, 'hello')).toBe('hello')
    expect(await roundTrip(socket, 'again')).toBe('again')
    socket.close()
  })

  it('keeps a backend with an open WebSocket from idling out, and sweeps it once the socket closes', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'ws-idle', spawn: { max_idle_seconds: 0.2 } })
    await waitStatus(server, cr.backend_id, 'ready')
    const socket = await openSocket(cr.url.replace('http', 'ws'))
    // Observe well past the idle limit with the socket open (traffic on it does not count as requests).
    const until = Date.now() + 800
    while (Date.now() < until) expect(await roundTrip(socket, 'ping')).toBe('ping')
    expect((await statusOf(server, cr.backend_id)).status).toBe('ready')
    socket.close()
    const state = await waitStatus(server, cr.backend_id, 'terminated')
    expect(state).toMatchObject({ termination_reason: 'swept' })
  })

  it('answers 502 when the backend resets the connection, and keeps serving', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'reset' })
    await waitStatus(server, cr.backend_id, 'ready')
    const reset = await rawRequest(`${cr.url}reset`)
    expect(reset.status).toBe(502)
    expect((await fetch(`${cr.url}fine`)).status).toBe(200)
    expect((await statusOf(server, cr.backend_id)).status).toBe('ready')
  })

  it('survives clients that disconnect mid-request and mid-upgrade', async () => {
    const server = await startServer('listen', { holdMs: 2000 })
    const cr = await connectRaw(server, { key: 'rude', spawn: { executable: { env: { FIXTURE_DELAY_MS: '150' } } } })
    const controller = new AbortController()
    const early = fetch(`${cr.url}x`, { signal: controller.signal }).catch((e: unknown) => e)
    const ws = new WebSocket(cr.url.replace('http', 'ws'))
    ws.on('error', () => {})
    controller.abort()
    ws.terminate()
    await early
    await waitStatus(server, cr.backend_id, 'ready')
    await eventually(async () => (await fetch(`${cr.url}after`)).status === 200, 'the proxy to keep serving')
  })
})
