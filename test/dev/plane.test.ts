/**
 * The local server's Plane routes end to end: real backend processes, the library's Plane target
 * (`new Jamsocket({ plane, image })`), raw requests for the exact shapes and status codes Plane 0.5
 * answers, and one registry shared with the v2 API.
 */
import { describe, expect, it } from 'vitest'
import type { FetchLike } from '../../src/abort.js'
import { BackendNotFoundError, HTTPError, Jamsocket, type BackendState } from '../../src/index.js'
import { alive, connectRaw, eventually, rawRequest, readSse, startServer, type SseEvent, type TestServer } from './helpers.js'

const IMAGE = 'ghcr.io/acme/editor:1.4'

const plane = (server: TestServer, extra: Record<string, unknown> = {}) => new Jamsocket({ plane: server.apiUrl, image: IMAGE, retry: false, ...extra } as never)

interface Echo {
  method: string
  url: string
  headers: Record<string, string>
}

/** POST /ctrl/connect with a raw body; returns status, content type and the parsed or raw body. */
async function ctrlConnect(server: TestServer, body: unknown, contentType: string | null = 'application/json') {
  const headers: Record<string, string> = contentType === null ? {} : { 'content-type': contentType }
  const response = await fetch(`${server.apiUrl}/ctrl/connect`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, type: response.headers.get('content-type'), text, json: () => JSON.parse(text) as Record<string, unknown> }
}

const spawnBody = (key: string, extra: Record<string, unknown> = {}) => ({
  key: { name: key, namespace: '', tag: IMAGE },
  spawn_config: { executable: { image: IMAGE } },
  ...extra,
})

/** Plane's data events as parsed entries. */
const entries = (events: SseEvent[]) => events.filter((e) => e.data !== undefined).map((e) => JSON.parse(e.data!) as Record<string, unknown>)

describe('the Plane target against the local server', () => {
  it('connect → ready → proxied request with identity headers → same key again → soft terminate', async () => {
    const server = await startServer('listen')
    const jamsocket = plane(server)
    const handle = await jamsocket.connect({ key: 'doc-42', user: 'ada', auth: { role: 'editor' } })
    expect(handle).toMatchObject({ spawned: true, status: 'scheduled', ready_url: '', status_url: `${server.apiUrl}/pub/b/${handle.backend_id}/status` })
    const seen: BackendState[] = []
    handle.on('status', (s) => seen.push(s))
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    expect(seen.map((s) => s.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])

    const response = await fetch(`${handle.url}hello?x=1`)
    expect(response.headers.get('x-plane-backend-id')).toBe(handle.backend_id)
    const echo = (await response.json()) as Echo
    expect(echo.url).toBe('/hello?x=1')
    expect(echo.headers).toMatchObject({
      'x-verified-username': 'ada',
      'x-verified-user-data': '{"role":"editor"}',
      'x-verified-backend': handle.backend_id,
      'x-verified-secret': handle.secret_token,
      'x-verified-path': `/${handle.token}/hello?x=1`,
    })

    const again = await jamsocket.connect({ key: 'doc-42' })
    expect(again).toMatchObject({ backend_id: handle.backend_id, spawned: false, status: 'ready' })
    expect(again.token).not.toBe(handle.token)
    await expect(jamsocket.status(handle.backend_id)).resolves.toMatchObject({ status: 'ready' })

    const pid = Number(((await (await fetch(`${again.url}env`)).json()) as Record<string, string>).pid)
    const terminated = new Promise<BackendState>((resolve) => handle.once('terminated', resolve))
    await expect(jamsocket.terminate(handle.backend_id)).resolves.toEqual({ status: 'ok' })
    expect(await terminated).toMatchObject({ status: 'terminated', termination_reason: 'external', termination_kind: 'soft', exit_error: false })
    expect(seen.map((s) => s.status).slice(5)).toEqual(['terminating', 'terminated'])
    await eventually(() => !alive(pid), 'the backend process to be gone')
  })

  it('hard terminate → hard-terminating → terminated (kind hard), and the key spawns anew afterwards', async () => {
    const server = await startServer('ignore-sigterm')
    const jamsocket = plane(server)
    const handle = await jamsocket.connect({ key: 'hard' })
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    const terminated = new Promise<BackendState>((resolve) => handle.once('terminated', resolve))
    await expect(jamsocket.terminate(handle.backend_id, { hard: true })).resolves.toEqual({ status: 'ok' })
    expect(await terminated).toMatchObject({ termination_reason: 'external', termination_kind: 'hard' })
    // Plane answers 200 for a backend that has already terminated.
    await expect(jamsocket.terminate(handle.backend_id, { hard: true })).resolves.toEqual({ status: 'ok' })
    const next = await jamsocket.connect({ key: 'hard' })
    expect(next.spawned).toBe(true)
    expect(next.backend_id).not.toBe(handle.backend_id)
  })

  it('409 KeyHeld for the same key from another image; 409 KeyUnheldNoSpawnConfig with spawn: false', async () => {
    const server = await startServer('listen')
    await plane(server).connect({ key: 'shared' })
    const other = plane(server, { image: 'ghcr.io/acme/editor:2.0' })
    const held = await other.connect({ key: 'shared' }).catch((e: unknown) => e as HTTPError)
    expect(HTTPError.isInstance(held)).toBe(true)
    expect(held).toMatchObject({ status: 409, errorCode: 'KeyHeld', message: 'connect() failed with 409 KeyHeld: Lock is held but tag does not match.' })
    const unheld = await other.connect({ key: 'nobody', spawn: false }).catch((e: unknown) => e as HTTPError)
    expect(unheld).toMatchObject({ status: 409, errorCode: 'KeyUnheldNoSpawnConfig' })
    // The same tag with spawn: false returns the running backend.
    await expect(plane(server).connect({ key: 'shared', spawn: false })).resolves.toMatchObject({ spawned: false })
  })

  it('status() and terminate() of an unknown backend → BackendNotFoundError (Plane’s NotFound)', async () => {
    const server = await startServer('listen')
    for (const call of [(j: Jamsocket) => j.status('nosuchbackend00'), (j: Jamsocket) => j.terminate('nosuchbackend00')]) {
      const error = await call(plane(server)).catch((e: unknown) => e)
      expect(BackendNotFoundError.isInstance(error)).toBe(true)
      expect(error).toMatchObject({ errorCode: 'NotFound', status: 404 })
    }
  })

  it('a handle’s stream that the server never closes is released at terminated', async () => {
    const server = await startServer('listen')
    const signals: AbortSignal[] = []
    const fetch: FetchLike = (input, init) => {
      if (String(input).endsWith('/status-stream') && init?.signal) signals.push(init.signal)
      return globalThis.fetch(input, init)
    }
    const jamsocket = plane(server, { fetch })
    const handle = await jamsocket.connect({ key: 'release' })
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    const terminated = new Promise((resolve) => handle.once('terminated', resolve))
    await jamsocket.terminate(handle.backend_id)
    await terminated
    expect(signals.length).toBeGreaterThan(0)
    await eventually(() => signals.every((s) => s.aborted), 'the stream to be released')
  })
})

describe('Plane’s routes on the wire', () => {
  it('connect answers every ConnectResponse key, nulls included; drone null on reuse', async () => {
    const server = await startServer('listen')
    const first = await ctrlConnect(server, spawnBody('wire'))
    expect(first.status).toBe(200)
    const body = first.json()
    expect(Object.keys(body)).toEqual(['backend_id', 'spawned', 'status', 'token', 'url', 'subdomain', 'secret_token', 'status_url', 'drone'])
    expect(body).toMatchObject({ spawned: true, status: 'scheduled', subdomain: null, status_url: `${server.apiUrl}/pub/b/${body.backend_id as string}/status` })
    expect(body.backend_id).toMatch(/^[a-z0-9]{14}$/)
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(body.url).toBe(`${server.proxyUrl}/${body.token as string}/`)
    expect(body.drone).toMatch(/^dr-[a-z0-9]+$/)
    const reuse = (await ctrlConnect(server, { key: { name: 'wire', tag: IMAGE } })).json()
    expect(reuse).toMatchObject({ backend_id: body.backend_id, spawned: false, drone: null })
  })

  it('axum’s rejections in plain text: 415 without a JSON content type, 400 for malformed JSON, 422 without executable', async () => {
    const server = await startServer('listen')
    const noType = await ctrlConnect(server, spawnBody('x'), 'text/plain')
    expect([noType.status, noType.type, noType.text]).toEqual([415, 'text/plain; charset=utf-8', 'Expected request with `Content-Type: application/json`'])
    expect((await ctrlConnect(server, spawnBody('x'), null)).status).toBe(415)
    const malformed = await ctrlConnect(server, '{"key":')
    expect(malformed.status).toBe(400)
    expect(malformed.text).toMatch(/^Failed to parse the request body as JSON: /)
    const noExecutable = await ctrlConnect(server, { key: { name: 'x' }, spawn_config: { cluster: 'c' } })
    expect([noExecutable.status, noExecutable.text]).toEqual([422, 'Failed to deserialize the JSON body into the target type: spawn_config: missing field `executable`'])
    const nullAuth = await ctrlConnect(server, { ...spawnBody('x'), auth: null })
    expect(nullAuth.status).toBe(422)
    const fraction = await ctrlConnect(server, { ...spawnBody('x'), spawn_config: { executable: { image: IMAGE }, max_idle_seconds: 1.5 } })
    expect([fraction.status, fraction.text]).toEqual([422, 'Failed to deserialize the JSON body into the target type: spawn_config.max_idle_seconds: invalid type: floating point `1.5`, expected i32'])
    expect(server.events.some((e) => e.type === 'status')).toBe(false)
  })

  it('409s and 404s as Plane’s {id, kind, message}', async () => {
    const server = await startServer('listen')
    const unheld = await ctrlConnect(server, { key: { name: 'k' } })
    expect(unheld.status).toBe(409)
    expect(unheld.json()).toEqual({ id: expect.stringMatching(/^[a-z0-9]{14}$/), kind: 'KeyUnheldNoSpawnConfig', message: 'Lock is unheld but no spawn config was provided.' })
    expect((await ctrlConnect(server, spawnBody('k'))).status).toBe(200)
    const held = await ctrlConnect(server, { key: { name: 'k', tag: 'other' } })
    expect([held.status, held.json().kind]).toEqual([409, 'KeyHeld'])
    for (const path of ['/pub/b/unknown0000000/status', '/ctrl/b/unknown0000000/soft-terminate', '/ctrl/b/unknown0000000/hard-terminate']) {
      const response = await fetch(`${server.apiUrl}${path}`, { method: path.startsWith('/ctrl') ? 'POST' : 'GET' })
      expect(response.status, path).toBe(404)
      expect(await response.json()).toMatchObject({ kind: 'NotFound', message: 'Backend does not exist' })
    }
  })

  it('the same validation as the v2 route: a mount that climbs out is refused before anything runs', async () => {
    const server = await startServer('listen')
    const climbing = await ctrlConnect(server, { ...spawnBody('m'), spawn_config: { executable: { image: IMAGE, mount: '../elsewhere' } } })
    expect(climbing.status).toBe(400)
    expect(climbing.json()).toMatchObject({ kind: 'Other', message: expect.stringContaining('mount') })
    const loader = await ctrlConnect(server, { ...spawnBody('l'), spawn_config: { executable: { image: IMAGE, env: { NODE_OPTIONS: '--require /tmp/x.js' } } } })
    expect(loader.status).toBe(400)
    expect(loader.json()).toMatchObject({ kind: 'Other', message: expect.stringContaining('NODE_OPTIONS') })
    expect(server.events.some((e) => e.type === 'status')).toBe(false)
  })

  it('with an API token, /ctrl wants it as a bearer (401 Unauthorized in plain text otherwise); /pub stays public', async () => {
    const apiToken = 'dev-api-token-0123456789abcdef'
    const server = await startServer('listen', { apiToken })
    const refused = await ctrlConnect(server, spawnBody('a'))
    expect([refused.status, refused.text]).toEqual([401, 'Unauthorized'])
    const handle = await plane(server, { token: apiToken }).connect({ key: 'a' })
    expect((await fetch(`${server.apiUrl}/pub/b/${handle.backend_id}/status`)).status).toBe(200)
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    await expect(plane(server).terminate(handle.backend_id)).rejects.toMatchObject({ status: 401 })
    await expect(plane(server, { token: apiToken }).terminate(handle.backend_id)).resolves.toEqual({ status: 'ok' })
  })

  it('cluster, pool and the Docker-only executable fields are accepted and ignored; what only a cluster does is refused with 400 Other', async () => {
    const server = await startServer('listen')
    const docker = { image: IMAGE, pull_policy: 'Never', credentials: null, network_name: null }
    const accepted = await ctrlConnect(server, { key: { name: 'c' }, spawn_config: { cluster: 'plane.acme.dev', pool: 'gpu', executable: docker } })
    expect(accepted.status).toBe(200)
    const refused: Array<[object, string]> = [
      [{ key: { name: 'n', namespace: 'team-a' }, spawn_config: { executable: { image: IMAGE } } }, 'key namespaces'],
      [{ spawn_config: { executable: { image: IMAGE }, use_static_token: true } }, 'static tokens'],
      [{ spawn_config: { executable: { image: IMAGE }, subdomain: 'abc' } }, 'subdomains'],
      [{ spawn_config: { executable: { image: IMAGE }, id: 'my-backend' } }, 'custom backend ids'],
    ]
    for (const [body, what] of refused) {
      const answer = await ctrlConnect(server, body)
      expect(answer.status, what).toBe(400)
      expect(answer.json()).toMatchObject({ kind: 'Other', message: `${what} are not supported by the local server` })
    }
  })

  it('terminate answers 200 with the body null', async () => {
    const server = await startServer('listen')
    const { backend_id: id } = (await ctrlConnect(server, spawnBody('t'))).json() as { backend_id: string }
    for (const kind of ['soft', 'hard']) {
      const response = await fetch(`${server.apiUrl}/ctrl/b/${id}/${kind}-terminate`, { method: 'POST' })
      expect([response.status, response.headers.get('content-type'), await response.text()]).toEqual([200, 'application/json', 'null'])
    }
  })

  it('status-stream: history replay then live, `data: {json}` + `id: <status>`, epoch-ms time, open after terminated', async () => {
    const server = await startServer('listen', { keepAliveMs: 50 })
    const { backend_id: id } = (await ctrlConnect(server, spawnBody('s'))).json() as { backend_id: string }
    const url = `${server.apiUrl}/pub/b/${id}/status-stream`
    const reading = readSse(url, {}, (events) => entries(events).some((e) => e.status === 'ready'))
    const first = await reading
    expect(first.status).toBe(200)
    expect(first.headers.get('content-type')).toBe('text/event-stream')
    expect(first.headers.get('access-control-allow-origin')).toBe('*')
    expect(first.raw).toMatch(/^data: \{"status":"scheduled","time":\d{13}\}\nid: scheduled\n\n/)
    expect(entries(first.events).map((e) => e.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
    for (const event of first.events.filter((e) => e.data)) expect(event.id).toBe(` ${JSON.parse(event.data!).status as string}`)

    // After terminated the stream stays open (Plane never ends it): a keep-alive still arrives.
    const after = readSse(url, { 'last-event-id': 'ready' }, (events) => {
      const done = events.findIndex((e) => e.data?.includes('"terminated"'))
      return done !== -1 && events.slice(done + 1).some((e) => e.comment)
    })
    await fetch(`${server.apiUrl}/ctrl/b/${id}/soft-terminate`, { method: 'POST' })
    const rest = entries((await after).events)
    expect(rest.map((e) => e.status)).toEqual(['terminating', 'terminated'])
    expect(rest[1]).toEqual({ status: 'terminated', termination_reason: 'external', termination_kind: 'soft', exit_error: false, time: expect.any(Number) })
  })

  it('Last-Event-ID resumes after that status; an unparseable one replays everything', async () => {
    const server = await startServer('listen')
    const { backend_id: id } = (await ctrlConnect(server, spawnBody('r'))).json() as { backend_id: string }
    const url = `${server.apiUrl}/pub/b/${id}/status-stream`
    await readSse(url, {}, (events) => entries(events).some((e) => e.status === 'ready'))
    const resumed = await readSse(url, { 'last-event-id': 'waiting' }, (events) => events.length >= 1)
    expect(entries(resumed.events).map((e) => e.status)).toEqual(['ready'])
    const garbage = await readSse(url, { 'last-event-id': 'nonsense' }, (events) => entries(events).length >= 5)
    expect(entries(garbage.events).map((e) => e.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
  })

  it('an unknown backend’s stream is 200 with keep-alives only, as Plane', async () => {
    const server = await startServer('listen', { keepAliveMs: 20 })
    const { status, events } = await readSse(`${server.apiUrl}/pub/b/nosuchbackend00/status-stream`, {}, (all) => all.length >= 2)
    expect(status).toBe(200)
    expect(events).toEqual([{ comment: true }, { comment: true }])
  })

  it('/ctrl/status, /pub/health, and CORS on /pub only', async () => {
    const server = await startServer('listen')
    expect(await (await fetch(`${server.apiUrl}/ctrl/status`)).json()).toEqual({ status: 'ok', version: '0.5.6', hash: 'local' })
    const health = await fetch(`${server.apiUrl}/pub/health`)
    expect([await health.json(), health.headers.get('access-control-allow-origin')]).toEqual([{ status: 'ok' }, '*'])
    const preflight = await fetch(`${server.apiUrl}/pub/b/x/status`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' },
    })
    expect(preflight.status).toBe(200)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*')
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET,POST')
    expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type')
    // A web page may not spawn processes through /ctrl.
    const fromPage = await fetch(`${server.apiUrl}/ctrl/connect`, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: JSON.stringify(spawnBody('p')) })
    expect(fromPage.status).toBe(403)
    expect(fromPage.headers.get('access-control-allow-origin')).toBeNull()
    expect((await fetch(`${server.apiUrl}/ctrl/nothing`)).status).toBe(404)
    expect((await fetch(`${server.apiUrl}/ctrl/connect`)).status).toBe(405)
  })
})

describe('one registry for both APIs', () => {
  it('keys are shared, Plane backends show in the v2 list, and the UI events name the image', async () => {
    const server = await startServer('listen')
    const v2 = await connectRaw(server, { key: 'both' })
    // The v2 backend holds the key with no tag: a Plane connect with the image as tag is refused.
    expect((await ctrlConnect(server, spawnBody('both'))).json().kind).toBe('KeyHeld')
    expect((await ctrlConnect(server, { key: { name: 'both' } })).json()).toMatchObject({ backend_id: v2.backend_id, spawned: false })
    const viaPlane = (await ctrlConnect(server, spawnBody('plane-only'))).json() as { backend_id: string }
    const running = (await (await fetch(`${server.apiUrl}/v2/account/any/backends`)).json()) as { running_backends: Array<{ id: string }> }
    expect(running.running_backends.map((b) => b.id).sort()).toEqual([v2.backend_id, viaPlane.backend_id].sort())
    const scheduled = server.events.find((e) => e.type === 'status' && e.backend.id === viaPlane.backend_id)
    expect(scheduled).toMatchObject({ backend: { key: 'plane-only', image: IMAGE } })
    expect((await rawRequest(`${server.apiUrl}/v2/backend/${viaPlane.backend_id}/status`)).status).toBe(200)
    // The dashboard's snapshot names the image of a Plane backend too (null for a v2 one).
    const { events } = await readSse(`${server.apiUrl}/dashboard/events`, {}, (all) => all.some((e) => e.data !== undefined))
    const snapshot = JSON.parse(events.find((e) => e.data !== undefined)!.data!) as { backends: Array<{ id: string; image: string | null }> }
    expect(snapshot.backends.find((b) => b.id === viaPlane.backend_id)?.image).toBe(IMAGE)
    expect(snapshot.backends.find((b) => b.id === v2.backend_id)?.image).toBeNull()
  })
})
