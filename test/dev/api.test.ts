/**
 * The local server's HTTP API on the wire: stream framing and resume, the ready long-poll, info
 * and lists, logs, CORS, and every kind of bad request.
 */
import { describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/index.js'
import { connectRaw, rawRequest, readSse, startServer, statuses, waitStatus } from './helpers.js'

describe('status stream', () => {
  it('replays the history as data:{json} + id:{status}, follows live, and ends after terminated', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'stream' })
    await waitStatus(server, cr.backend_id, 'ready')
    const reading = readSse(`${cr.status_url}/stream`)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST', body: '{"hard":false}' })
    const { events, raw, headers } = await reading
    expect(headers.get('content-type')).toBe('text/event-stream')
    expect(headers.get('access-control-allow-origin')).toBe('*')
    expect(statuses(events)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'terminated'])
    expect(raw).toContain('data:{"status":"scheduled","time":"')
    expect(raw).toContain('\nid:scheduled\n\n')
    for (const e of events) expect(e.id).toBe(JSON.parse(e.data!).status)
  })

  it('skips everything at or before Last-Event-ID', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'resume' })
    await waitStatus(server, cr.backend_id, 'ready')
    const fromWaiting = await readSse(`${cr.status_url}/stream`, { 'last-event-id': 'waiting' }, (events) => events.length >= 1)
    expect(statuses(fromWaiting.events)).toEqual(['ready'])
    const reading = readSse(`${cr.status_url}/stream`, { 'last-event-id': 'ready' })
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST' })
    expect(statuses((await reading).events)).toEqual(['terminating', 'terminated'])
    const afterEnd = await readSse(`${cr.status_url}/stream`, { 'last-event-id': 'terminated' })
    expect(afterEnd.events).toEqual([])
  })

  it('sends a ":" comment after keepAliveMs of silence', async () => {
    const server = await startServer('listen', { keepAliveMs: 50 })
    const cr = await connectRaw(server, { key: 'keepalive' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { events } = await readSse(`${cr.status_url}/stream`, {}, (all) => all.some((e) => e.comment))
    expect(statuses(events)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
    expect(events.at(-1)).toEqual({ comment: true })
  })
})

describe('ready_url long-poll', () => {
  it('answers 200 with the state once ready', async () => {
    const server = await startServer('listen', { probeIntervalMs: 10 })
    const cr = await connectRaw(server, { key: 'ready-200', spawn: { executable: { env: { FIXTURE_DELAY_MS: '200' } } } })
    expect(cr.ready_url).toBe(`${server.apiUrl}/v2/backend/${cr.backend_id}/ready`)
    const response = await fetch(cr.ready_url!)
    expect(response.status).toBe(200)
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    expect(await response.json()).toMatchObject({ status: 'ready' })
  })

  it('answers 410 with the state when the backend ended first', async () => {
    const server = await startServer('crash')
    const cr = await connectRaw(server, { key: 'ready-410' })
    const response = await fetch(cr.ready_url!)
    expect(response.status).toBe(410)
    expect(await response.json()).toMatchObject({ status: 'terminated', exit_error: true })
  })

  it('answers 202 with the current state after readyWaitMs, so the caller asks again', async () => {
    const server = await startServer('never-listens', { readyWaitMs: 100 })
    const cr = await connectRaw(server, { key: 'ready-202' })
    const response = await fetch(cr.ready_url!)
    expect(response.status).toBe(202)
    expect(['scheduled', 'loading', 'starting', 'waiting']).toContain(((await response.json()) as { status: string }).status)
  })
})

describe('backend info, list, logs', () => {
  it('lists running backends with their key and answers info with the status history', async () => {
    const server = await startServer('listen')
    const jamsocket = new Jamsocket({ dev: true, port: server.port })
    const handle = await jamsocket.connect({ key: 'listed' })
    await handle.waitUntilReady()
    const list = (await (await fetch(`${server.apiUrl}/v2/account/acct/backends`)).json()) as { running_backends: Array<{ id: string; key: string; status: { status: string } }> }
    expect(list.running_backends).toEqual([expect.objectContaining({ id: handle.backend_id, key: 'listed', status: expect.objectContaining({ status: 'ready' }) })])
    const info = (await (await fetch(`${server.apiUrl}/v2/backend/${handle.backend_id}`)).json()) as { id: string; key: string; statuses: Array<{ status: string }> }
    expect(info.id).toBe(handle.backend_id)
    expect(info.key).toBe('listed')
    expect(info.statuses.map((s) => s.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
    handle.close()
  })

  it('streams the backend output, replayed then live, ending after it terminated', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'logs' })
    await waitStatus(server, cr.backend_id, 'ready')
    const reading = readSse(`${server.apiUrl}/v2/backend/${cr.backend_id}/logs/stream`)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST' })
    const lines = (await reading).events.filter((e) => e.data !== undefined).map((e) => e.data)
    expect(lines[0]).toMatch(/^listening on \d+$/)
    expect(lines).toContain('got SIGTERM')
  })
})

describe('bad requests', () => {
  it('answers malformed JSON with 400 in the hosted error shape', async () => {
    const server = await startServer('listen')
    const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: '{"key":' })
    expect(response.status).toBe(400)
    const body = (await response.json()) as { error: { status: number; code: string; message: string; id: string } }
    expect(body.error).toMatchObject({ status: 400, code: 'InvalidRequest' })
    expect(body.error.message).toMatch(/JSON/)
    expect(body.error.id).toMatch(/^[a-z0-9]{14}$/)
  })

  it('answers a body over the cap with 413', async () => {
    const server = await startServer('listen', { maxBodyBytes: 1000 })
    const big = JSON.stringify({ key: 'x'.repeat(5000) })
    const response = await rawRequest(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } })
    expect(response.status).toBe(413)
    // Without a content-length, the cap applies while reading.
    const chunked = await rawRequest(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: big, headers: { 'transfer-encoding': 'chunked' } })
    expect(chunked.status).toBe(413)
    expect(JSON.parse(chunked.body)).toMatchObject({ error: { code: 'PayloadTooLarge' } })
  })

  it('answers invalid fields with 400 naming the field', async () => {
    const server = await startServer('listen')
    for (const [body, field] of [
      [{ key: 42 }, 'key'],
      [{ spawn: 'yes' }, 'spawn'],
      [{ spawn: { executable: { env: { A: 1 } } } }, 'env'],
      [{ spawn: { executable: { mount: '../escape' } } }, 'mount'],
      [{ spawn: { max_idle_seconds: -1 } }, 'max_idle_seconds'],
      [{ spawn: { executable: { resource_limits: { cpu_time_limit: 'lots' } } } }, 'cpu_time_limit'],
    ] as const) {
      const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: JSON.stringify(body) })
      expect(response.status).toBe(400)
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(field)
    }
  })

  it('refuses a foreign Host with 403 on the API and the proxy (DNS rebinding)', async () => {
    const server = await startServer('listen')
    const api = await rawRequest(`${server.apiUrl}/v2/account/a/backends`, { headers: { host: `evil.example:${server.port}` } })
    expect(api.status).toBe(403)
    const proxy = await rawRequest(`${server.proxyUrl}/token/`, { headers: { host: 'evil.example' } })
    expect(proxy.status).toBe(403)
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`]) {
      expect((await rawRequest(`${server.apiUrl}/v2/account/a/backends`, { headers: { host } })).status).toBe(200)
    }
  })

  it('serves on an IPv6 loopback host: bracketed URLs, and the Host check accepts them on the API and the proxy', async () => {
    const server = await startServer('listen', { host: '::1' })
    expect(server.apiUrl).toMatch(/^http:\/\/\[::1\]:\d+$/)
    const cr = await connectRaw(server, { key: 'v6' })
    expect(cr.url).toMatch(/^http:\/\/\[::1\]:\d+\//)
    await waitStatus(server, cr.backend_id, 'ready')
    const response = await fetch(`${cr.url}hello`)
    expect(response.status).toBe(200)
    expect(((await response.json()) as { url: string }).url).toBe('/hello')
  })

  it('answers unknown backend ids with 404 and a code, on every backend route', async () => {
    const server = await startServer('listen')
    for (const [method, path] of [
      ['GET', 'status'],
      ['GET', 'status/stream'],
      ['GET', 'ready'],
      ['POST', 'terminate'],
      ['GET', ''],
      ['GET', 'logs/stream'],
    ] as const) {
      const response = await fetch(`${server.apiUrl}/v2/backend/nosuchbackend/${path}`, { method })
      expect(response.status, path).toBe(404)
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('BackendNotFound')
    }
    expect((await fetch(`${server.apiUrl}/v3/nothing`)).status).toBe(404)
  })

  it('answers spawn:false on an unheld key with 409 KeyUnheldNoSpawnConfig, and a second terminate with 409 BackendNotRunning', async () => {
    const server = await startServer('crash')
    const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: JSON.stringify({ key: 'nobody', spawn: false }) })
    expect(response.status).toBe(409)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('KeyUnheldNoSpawnConfig')
    const cr = await connectRaw(server, { key: 'ends' })
    await waitStatus(server, cr.backend_id, 'terminated')
    const again = await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST', body: '{}' })
    expect(again.status).toBe(409)
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('BackendNotRunning')
  })

  it('answers preflight with CORS for browsers, accepts the Authorization header and ignores the query string', async () => {
    const server = await startServer('listen')
    const preflight = await fetch(`${server.apiUrl}/v2/backend/x/status`, { method: 'OPTIONS', headers: { origin: 'http://app.test', 'access-control-request-method': 'GET' } })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*')
    expect(preflight.headers.get('access-control-allow-headers')).toContain('last-event-id')
    const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect?cache=123`, { method: 'POST', headers: { authorization: 'Bearer whatever' } })
    expect(response.status).toBe(200)
  })

  it('refuses orders from web pages: a cross-origin POST to connect (no preflight needed) gets 403 and spawns nothing', async () => {
    const server = await startServer('listen')
    const attack = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      body: JSON.stringify({ key: 'x', spawn: { executable: { env: { NODE_OPTIONS: '--require=/tmp/evil.js' } } } }),
    })
    expect(attack.status).toBe(403)
    expect(((await attack.json()) as { error: { code: string } }).error.code).toBe('ForbiddenOrigin')
    const list = (await (await fetch(`${server.apiUrl}/v2/account/-/backends`)).json()) as { running_backends: unknown[] }
    expect(list.running_backends).toHaveLength(0)
    // Nor are the token-bearing routes offered to other origins by preflight.
    const preflight = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
    // The public routes still answer any origin, and a page served by the server itself may call the rest.
    const cr = await connectRaw(server, { key: 'public' })
    const status = await fetch(cr.status_url, { headers: { origin: 'https://app.example' } })
    expect(status.status).toBe(200)
    const own = await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}`, { headers: { origin: server.apiUrl } })
    expect(own.status).toBe(200)
  })

  it('answers HEAD on a stream route with its headers and ends (no stream held open)', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'head' })
    const response = await fetch(`${cr.status_url}/stream`, { method: 'HEAD' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream')
  })
})
