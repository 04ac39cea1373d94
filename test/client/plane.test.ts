/**
 * The Plane target against Plane's wire as recorded in reference/plane.md (Plane 0.5.6 and 0.4.12):
 * exact paths, headers and bodies of what is sent, every error kind of what comes back, the status
 * stream in both framings, and where the token may go.
 */
import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { withImageTag } from '../../src/client/targets/index.js'
import { AuthenticationError, BackendNotFoundError, BackendTerminatedError, HTTPError, TimeoutError } from '../../src/errors.js'
import { BackendHandle } from '../../src/status/index.js'
import type { ConnectResponse } from '../../src/wire.js'
import { fail, hangingFetch, json, type Recorded, recordingFetch } from './helpers.js'

const PLANE = 'http://controller.internal:8080'
const IMAGE = 'ghcr.io/acme/editor:1.4'
const PLANE_TOKEN = 'plane_fwd_auth_7c1e9b2d4f6a8SECRET'
const BACKEND = 'k3bq0x5zjd8wpv'

/** A ConnectResponse as Plane 0.5 serialises it: every key, nulls included, no ready_url. */
const PLANE_CONNECT = {
  backend_id: BACKEND,
  spawned: true,
  status: 'scheduled',
  token: 'vqW4nT1bY0cLk3mZpR8sXa2dF6gH9jK5lQ7wE4tUi0o',
  url: `https://plane.acme.dev/vqW4nT1bY0cLk3mZpR8sXa2dF6gH9jK5lQ7wE4tUi0o/`,
  subdomain: null,
  secret_token: 'Zx8c7v6b5n4m3a2s1d0f9g8h7j6k5l4q3w2e1r0t9y8',
  status_url: `${PLANE}/pub/b/${BACKEND}/status`,
  drone: 'dr-m2x8q0n7c5v1zt',
}

const T0 = 1_723_731_117_010 // epoch ms, as Plane sends `time`
const LIFECYCLE = [
  { status: 'scheduled', time: T0 },
  { status: 'loading', time: T0 + 5 },
  { status: 'starting', time: T0 + 900 },
  { status: 'waiting', time: T0 + 1200 },
  { status: 'ready', time: T0 + 1500 },
  { status: 'terminating', termination_reason: 'external', termination_kind: 'soft', time: T0 + 9000 },
  { status: 'terminated', termination_reason: 'external', termination_kind: 'soft', exit_error: false, time: T0 + 9100 },
]

/** Plane 0.5 frames `data: {json}\nid: <status>\n\n` (axum 0.7); 0.4 wrote no space after the colons. */
function frame(entries: object[], space: boolean): string {
  const sep = space ? ': ' : ':'
  return entries.map((e) => `data${sep}${JSON.stringify(e)}\nid${sep}${(e as { status: string }).status}\n\n`).join('')
}

/** An SSE response that sends `text` and then stays open (Plane never ends the stream) until aborted. */
function openStream(text: string, signal: AbortSignal | undefined): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text))
      signal?.addEventListener('abort', () => controller.error(signal.reason), { once: true })
    },
  })
  return new Response(stream, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } })
}

const planeClient = (fetch: ReturnType<typeof recordingFetch>, extra: Record<string, unknown> = {}) =>
  new Jamsocket({ plane: PLANE, image: IMAGE, token: PLANE_TOKEN, retry: false, fetch, ...extra } as never)


const bodyOf = (call: Recorded) => JSON.parse(call.body!) as Record<string, unknown>

describe('connect(): POST {plane}/ctrl/connect with Plane’s body', () => {
  it('maps key, spawn, user and auth to Plane’s ConnectRequest, with the bearer and a JSON content type', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    await planeClient(fetch, { cluster: 'plane.acme.dev', pool: 'gpu' }).connect({
      key: 'doc-42',
      user: 'ada',
      auth: { role: 'editor' },
      spawn: {
        tag: '1.5',
        lifetime_limit_seconds: 3600,
        max_idle_seconds: 300,
        executable: { env: { MODE: 'collab' }, mount: true, resource_limits: { cpu_period_percent: 50, memory_limit_bytes: 268435456 } },
      },
    })
    const call = fetch.calls[0]!
    expect(call.method).toBe('POST')
    expect(call.url).toBe(`${PLANE}/ctrl/connect`)
    expect(call.headers).toEqual({ authorization: `Bearer ${PLANE_TOKEN}`, 'content-type': 'application/json', accept: 'application/json' })
    expect(bodyOf(call)).toEqual({
      key: { name: 'doc-42', namespace: '', tag: 'ghcr.io/acme/editor:1.5' },
      spawn_config: {
        cluster: 'plane.acme.dev',
        pool: 'gpu',
        executable: {
          image: 'ghcr.io/acme/editor:1.5',
          env: { MODE: 'collab' },
          mount: true,
          resource_limits: { cpu_period_percent: 50, memory_limit_bytes: 268435456 },
        },
        lifetime_limit_seconds: 3600,
        max_idle_seconds: 300,
      },
      user: 'ada',
      auth: { role: 'editor' },
    })
  })

  it('fields Plane defaults but takes no null for (auth, pool, env, resource_limits) are left out, never null', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    await planeClient(fetch).connect()
    // key is an Option: null is what "no key" is; spawn_config always carries the executable.
    expect(fetch.calls[0]!.body).toBe(`{"key":null,"spawn_config":{"executable":{"image":"${IMAGE}"}}}`)
    await planeClient(fetch).connect({ key: 'k', spawn: { executable: {} } })
    expect(bodyOf(fetch.calls[1]!)).toEqual({ key: { name: 'k', namespace: '', tag: IMAGE }, spawn_config: { executable: { image: IMAGE } } })
  })

  it('spawn: false → spawn_config null (connect only to a running backend); spawn: true → the default spawn', async () => {
    const fetch = recordingFetch(json({ ...PLANE_CONNECT, spawned: false, status: 'ready', drone: null }))
    await planeClient(fetch).connect({ key: 'doc-42', spawn: false })
    expect(bodyOf(fetch.calls[0]!)).toEqual({ key: { name: 'doc-42', namespace: '', tag: IMAGE }, spawn_config: null })
    await planeClient(fetch, { cluster: 'c.example' }).connect({ key: 'doc-42', spawn: true })
    expect(bodyOf(fetch.calls[1]!).spawn_config).toEqual({ cluster: 'c.example', executable: { image: IMAGE } })
  })

  it('the request’s spawn.cluster wins over the client’s cluster', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    await planeClient(fetch, { cluster: 'a.example' }).connect({ key: 'k', spawn: { cluster: 'b.example' } })
    expect(bodyOf(fetch.calls[0]!).spawn_config).toMatchObject({ cluster: 'b.example' })
  })

  it('what Plane cannot honour is a TypeError before anything is sent', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    const jamsocket = planeClient(fetch)
    const refused: Array<[object, RegExp]> = [
      [{ spawn: { max_idle_seconds: 1.5 } }, /spawn\.max_idle_seconds must be a whole number from 0 to 2147483647 for Plane, got 1\.5/],
      [{ spawn: { lifetime_limit_seconds: 2 ** 31 } }, /spawn\.lifetime_limit_seconds must be a whole number/],
      [{ spawn: { executable: { resource_limits: { cpu_period_percent: 300 } } } }, /cpu_period_percent must be a whole number from 0 to 255/],
      [{ spawn: { executable: { resource_limits: { cpu_time_limit: 0.5 } } } }, /cpu_time_limit must be a whole number/],
      [{ spawn: { tag: 'v1 beta' } }, /spawn\.tag must be an image tag/],
      [{ spawn: { tag: '-x' } }, /spawn\.tag must be an image tag/],
      [{ spawn: { executable: { mount: '../other-key' } } }, /mount must be true or a relative path without "\.\."/],
      [{ spawn: { executable: { mount: '/etc' } } }, /mount must be true or a relative path/],
      [{ spawn: { cluster: '' } }, /spawn\.cluster must be a non-empty string/],
      [{ keys: 'k' }, /did you mean request\.key/],
    ]
    for (const [request, message] of refused) await expect(jamsocket.connect(request as never)).rejects.toThrow(message)
    await expect(jamsocket.connect({ spawn: { max_idle_seconds: 1.5 } })).rejects.toBeInstanceOf(TypeError)
    expect(fetch.calls).toHaveLength(0)
  })

  it('returns a handle of Plane’s ConnectResponse: no ready_url, Plane’s status_url, extra keys dropped', async () => {
    const handle = await planeClient(recordingFetch(json(PLANE_CONNECT))).connect({ key: 'doc-42' })
    expect(handle.backend_id).toBe(BACKEND)
    expect(handle.status_url).toBe(`${PLANE}/pub/b/${BACKEND}/status`)
    expect(handle.ready_url).toBe('')
    expect(handle.toJSON()).toEqual({
      backend_id: BACKEND,
      spawned: true,
      status: 'scheduled',
      token: PLANE_CONNECT.token,
      url: PLANE_CONNECT.url,
      secret_token: PLANE_CONNECT.secret_token,
      status_url: PLANE_CONNECT.status_url,
      ready_url: '',
    })
  })

  it('a static-token backend (secret_token null) is read as Plane sends it', async () => {
    const handle = await planeClient(recordingFetch(json({ ...PLANE_CONNECT, token: 's.abc', secret_token: null }))).connect({ key: 'k' })
    expect(handle.secret_token).toBeNull()
  })
})

describe('withImageTag(): spawn.tag replaces the image’s tag', () => {
  it.each([
    ['ghcr.io/acme/editor:1.4', 'ghcr.io/acme/editor:1.5'],
    ['ghcr.io/acme/editor', 'ghcr.io/acme/editor:1.5'],
    ['localhost:5000/acme/editor', 'localhost:5000/acme/editor:1.5'],
    ['localhost:5000/acme/editor:1.4', 'localhost:5000/acme/editor:1.5'],
    ['editor:latest', 'editor:1.5'],
    [`ghcr.io/acme/editor:1.4@sha256:${'a'.repeat(64)}`, 'ghcr.io/acme/editor:1.5'],
  ])('%s → %s (a registry port is not a tag)', (image, expected) => {
    expect(withImageTag(image, '1.5')).toBe(expected)
  })
})

describe('following a Plane backend: /pub/b/{id}/status-stream', () => {
  for (const [version, space] of [
    ['0.5 (data: {json}, id: <status>)', true],
    ['0.4 (data:{json}, id:<status>)', false],
  ] as const) {
    it(`waitUntilReady() from the stream alone, Plane ${version}; time in epoch ms becomes ISO`, async () => {
      const fetch = recordingFetch(json(PLANE_CONNECT), (request) => openStream(frame(LIFECYCLE.slice(0, 5), space), request.signal))
      const handle = await planeClient(fetch).connect({ key: 'doc-42' })
      const seen: string[] = []
      handle.on('status', (s) => seen.push(s.status))
      await handle.waitUntilReady()
      expect(seen).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
      expect(handle.state).toEqual({ status: 'ready', time: new Date(T0 + 1500).toISOString() })
      const stream = fetch.calls[1]!
      expect(stream.url).toBe(`${PLANE}/pub/b/${BACKEND}/status-stream`)
      expect(stream.headers.authorization).toBeUndefined()
      handle.close()
    })
  }

  it('a stream that never closes is released at terminated, with the termination fields', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT), (request) => openStream(frame(LIFECYCLE, true), request.signal))
    const handle = await planeClient(fetch).connect({ key: 'doc-42' })
    const ended = new Promise((resolve) => handle.once('terminated', resolve))
    expect(await ended).toEqual({
      status: 'terminated',
      termination_reason: 'external',
      termination_kind: 'soft',
      exit_error: false,
      time: new Date(T0 + 9100).toISOString(),
    })
    // Plane keeps the response open for ever: the follower aborts it itself.
    await vi.waitFor(() => expect(fetch.calls[1]!.signal!.aborted).toBe(true))
    expect(fetch.calls).toHaveLength(2)
  })

  it('waitUntilReady() rejects with BackendTerminatedError when Plane reports terminating first', async () => {
    const early = [LIFECYCLE[0]!, LIFECYCLE[1]!, { status: 'hard-terminating', termination_reason: 'startuptimeout', termination_kind: 'hard', time: T0 + 99 }]
    const fetch = recordingFetch(json(PLANE_CONNECT), (request) => openStream(frame(early, true), request.signal))
    const error = await fail((await planeClient(fetch).connect({ key: 'k' })).waitUntilReady())
    expect(BackendTerminatedError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ reason: 'startuptimeout', state: { status: 'hard-terminating' } })
  })

  it('a browser-side handle built from Plane’s ConnectResponse finds the same stream; reconnects take the replay, without Last-Event-ID', async () => {
    let opened = 0
    const fetch = recordingFetch((request) => {
      opened++
      // First connection: the history up to waiting, then the server drops it; second: resumed.
      if (opened === 1) return new Response(frame(LIFECYCLE.slice(0, 4), true), { headers: { 'content-type': 'text/event-stream' } })
      // Plane replays the whole history to a request without Last-Event-ID.
      return openStream(frame(LIFECYCLE.slice(0, 5), true), request.signal)
    })
    const seen: string[] = []
    const handle = new BackendHandle(PLANE_CONNECT as unknown as ConnectResponse, { fetch, reconnect: { minDelayMs: 1, maxDelayMs: 1 } })
    handle.on('status', (s) => seen.push(s.status))
    await handle.waitUntilReady()
    expect(fetch.calls.map((c) => c.url)).toEqual([`${PLANE}/pub/b/${BACKEND}/status-stream`, `${PLANE}/pub/b/${BACKEND}/status-stream`])
    // Plane's /pub CORS allows only content-type: a browser on another origin could not send it.
    expect(fetch.calls[1]!.headers).toEqual({ accept: 'text/event-stream' })
    expect(seen).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready'])
    handle.close()
  })

  it('the pool works unchanged: concurrent connects for one key share one call and one stream', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT), (request) => openStream(frame(LIFECYCLE.slice(0, 5), true), request.signal))
    const pool = planeClient(fetch).pool()
    const handles = await Promise.all([pool.connect({ key: 'doc-42' }), pool.connect({ key: 'doc-42' })])
    await Promise.all(handles.map((h) => h.waitUntilReady()))
    expect(fetch.calls.map((c) => c.url)).toEqual([`${PLANE}/ctrl/connect`, `${PLANE}/pub/b/${BACKEND}/status-stream`])
    await pool.close()
  })
})

describe('status() and terminate()', () => {
  it('status(): GET /pub/b/{id}/status, no token, epoch ms time normalised', async () => {
    const fetch = recordingFetch(json({ status: 'ready', time: T0 }))
    await expect(planeClient(fetch).status(BACKEND)).resolves.toEqual({ status: 'ready', time: new Date(T0).toISOString() })
    expect(fetch.calls[0]!.method).toBe('GET')
    expect(fetch.calls[0]!.url).toBe(`${PLANE}/pub/b/${BACKEND}/status`)
    expect(fetch.calls[0]!.headers).toEqual({ accept: 'application/json' })
  })

  it('terminate(): POST /ctrl/b/{id}/soft-terminate or /hard-terminate with the bearer; Plane’s null → { status: "ok" }', async () => {
    const fetch = recordingFetch(json(null))
    const jamsocket = planeClient(fetch)
    await expect(jamsocket.terminate(BACKEND)).resolves.toEqual({ status: 'ok' })
    await expect(jamsocket.terminate(BACKEND, { hard: true })).resolves.toEqual({ status: 'ok' })
    expect(fetch.calls.map((c) => [c.method, c.url])).toEqual([
      ['POST', `${PLANE}/ctrl/b/${BACKEND}/soft-terminate`],
      ['POST', `${PLANE}/ctrl/b/${BACKEND}/hard-terminate`],
    ])
    expect(fetch.calls[0]!.headers.authorization).toBe(`Bearer ${PLANE_TOKEN}`)
    expect(fetch.calls[0]!.redirect).toBe('manual')
  })

  it('ids are path-encoded', async () => {
    const fetch = recordingFetch(json(null))
    await planeClient(fetch).terminate('a/b')
    expect(fetch.calls[0]!.url).toBe(`${PLANE}/ctrl/b/a%2Fb/soft-terminate`)
  })
})

describe('Plane’s errors', () => {
  // controller/connect.rs: every ApiErrorKind connect can answer, with its status and message.
  const KINDS: Array<[string, number, string]> = [
    ['KeyHeld', 409, 'Lock is held but tag does not match.'],
    ['KeyUnheldNoSpawnConfig', 409, 'Lock is unheld but no spawn config was provided.'],
    ['FailedToRemoveKey', 409, 'Failed to remove lock.'],
    ['NoClusterProvided', 400, 'No cluster provided, and no default cluster for this controller.'],
    ['NoDroneAvailable', 500, 'No active drone available.'],
    ['FailedToAcquireKey', 500, 'Failed to acquire lock.'],
    ['KeyHeldUnhealthy', 500, 'Lock is held but unhealthy.'],
    ['Other', 500, 'Internal error.'],
  ]
  for (const [kind, status, message] of KINDS) {
    it(`${status} ${kind} → HTTPError with errorCode ${kind}, requestId and Plane’s message`, async () => {
      const error = (await fail(planeClient(recordingFetch(json({ id: 'x7kq2m9vd0b4nc', kind, message }, status))).connect({ key: 'k' }))) as HTTPError
      expect(HTTPError.isInstance(error)).toBe(true)
      expect(error).toMatchObject({ status, code: status, errorCode: kind, requestId: 'x7kq2m9vd0b4nc' })
      expect(error.message).toBe(`connect() failed with ${status} ${kind}: ${message}`)
    })
  }

  it('404 NotFound on status and terminate → BackendNotFoundError', async () => {
    const notFound = json({ id: 'q1w2e3r4t5y6u7', kind: 'NotFound', message: 'Backend does not exist' }, 404)
    for (const call of [(j: Jamsocket) => j.status('nope'), (j: Jamsocket) => j.terminate('nope', { hard: true })]) {
      const error = await fail(call(planeClient(recordingFetch(notFound))))
      expect(BackendNotFoundError.isInstance(error)).toBe(true)
      expect(error).toMatchObject({ errorCode: 'NotFound' })
    }
  })

  it.each([
    [415, 'Expected request with `Content-Type: application/json`'],
    [400, 'Failed to parse the request body as JSON: key must be a string at line 1 column 9'],
    [422, 'Failed to deserialize the JSON body into the target type: spawn_config: missing field `executable` at line 1 column 32'],
  ])('axum’s plain-text %i rejection → an HTTPError quoting it', async (status, text) => {
    const response = new Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } })
    const error = (await fail(planeClient(recordingFetch(response)).connect({ key: 'k' }))) as HTTPError
    expect(error).toMatchObject({ status, errorCode: undefined })
    expect(error.message).toBe(`connect() failed with ${status} ${text}`)
  })

  it('forward auth’s plain 401 → AuthenticationError', async () => {
    const error = await fail(planeClient(recordingFetch(new Response('Unauthorized', { status: 401 }))).connect({ key: 'k' }))
    expect(AuthenticationError.isInstance(error)).toBe(true)
  })

  it('409s are never retried; a keyed connect is retried on 500 NoDroneAvailable, a keyless one is not', async () => {
    const noDrone = json({ id: 'a', kind: 'NoDroneAvailable', message: 'No active drone available.' }, 500)
    const held = json({ id: 'b', kind: 'KeyHeld', message: 'Lock is held but tag does not match.' }, 409)
    const retrying = (fetch: ReturnType<typeof recordingFetch>) => planeClient(fetch, { retry: { retries: 2, minTimeoutMs: 0 } })
    let fetch = recordingFetch(held)
    await fail(retrying(fetch).connect({ key: 'k' }))
    expect(fetch.calls).toHaveLength(1)
    fetch = recordingFetch(noDrone, noDrone, json(PLANE_CONNECT))
    await retrying(fetch).connect({ key: 'k' })
    expect(fetch.calls).toHaveLength(3)
    fetch = recordingFetch(noDrone)
    await fail(retrying(fetch).connect())
    expect(fetch.calls).toHaveLength(1)
  })
})

describe('timeouts and cancellation, as on v2', () => {
  it('a stalled controller → TimeoutError per attempt; an abort → signal.reason, without retrying', async () => {
    const fetch = hangingFetch()
    const jamsocket = new Jamsocket({ plane: PLANE, image: IMAGE, fetch, retry: false })
    const timedOut = await fail(jamsocket.connect({ key: 'k' }, { timeoutMs: 20 }))
    expect(TimeoutError.isInstance(timedOut)).toBe(true)
    const controller = new AbortController()
    const reason = new Error('user left')
    const pending = fail(new Jamsocket({ plane: PLANE, image: IMAGE, fetch }).terminate(BACKEND, { signal: controller.signal }))
    controller.abort(reason)
    expect(await pending).toBe(reason)
    expect(fetch.calls).toBe(2)
  })
})

describe('the token', () => {
  it('goes to /ctrl routes only: never to /pub/b/{id}/status or the status stream', async () => {
    const fetch = recordingFetch((request) => {
      if (request.url.endsWith('/ctrl/connect')) return json(PLANE_CONNECT)
      if (request.url.endsWith('/status')) return json({ status: 'ready', time: T0 })
      return openStream(frame(LIFECYCLE.slice(0, 5), true), request.signal)
    })
    const jamsocket = planeClient(fetch)
    const handle = await jamsocket.connect({ key: 'k' })
    await handle.waitUntilReady()
    await jamsocket.status(BACKEND)
    handle.close()
    for (const call of fetch.calls) {
      const ctrl = new URL(call.url).pathname.startsWith('/ctrl/')
      expect(call.headers.authorization, call.url).toBe(ctrl ? `Bearer ${PLANE_TOKEN}` : undefined)
    }
    expect(fetch.calls.map((c) => new URL(c.url).pathname)).toEqual(['/ctrl/connect', `/pub/b/${BACKEND}/status-stream`, `/pub/b/${BACKEND}/status`])
  })

  it('a controller without forward auth: no Authorization header at all', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    await new Jamsocket({ plane: PLANE, image: IMAGE, fetch }).connect({ key: 'k' })
    expect(fetch.calls[0]!.headers.authorization).toBeUndefined()
  })

  it('is redacted from errors (also JSON-escaped echoes) and never shown by inspect or JSON', async () => {
    const echo = json({ id: 'e', kind: 'Other', message: `bad header Bearer ${PLANE_TOKEN}` }, 500)
    const error = (await fail(planeClient(recordingFetch(echo)).connect({ key: 'k' }))) as HTTPError
    expect(`${error.message} ${error.body}`).not.toContain(PLANE_TOKEN)
    const jamsocket = planeClient(recordingFetch(json(null)), { cluster: 'plane.acme.dev' })
    expect(inspect(jamsocket)).not.toContain(PLANE_TOKEN)
    expect(JSON.parse(JSON.stringify(jamsocket))).toEqual({
      apiUrl: PLANE,
      account: '',
      service: '',
      dev: false,
      token: '[redacted]',
      plane: PLANE,
      image: IMAGE,
      cluster: 'plane.acme.dev',
    })
    expect(jamsocket.target).toBe('plane')
  })

  it('a redirect on a /ctrl route is not followed (the bearer stays on the controller’s origin)', async () => {
    const fetch = recordingFetch(new Response(null, { status: 307, headers: { location: 'https://elsewhere.example/ctrl/connect' } }))
    const error = (await fail(planeClient(fetch).connect({ key: 'k' }))) as HTTPError
    expect(error.message).toContain('redirect to https://elsewhere.example not followed')
    expect(fetch.calls).toHaveLength(1)
  })
})

describe('construction and fromEnv()', () => {
  it('refuses a bad controller URL, image, cluster or token with a TypeError that quotes no value', () => {
    const bad: Array<[object, RegExp]> = [
      [{ plane: 'controller:8080', image: IMAGE }, /plane must be an (absolute )?http\(s\) URL/],
      [{ plane: `http://${PLANE_TOKEN}@controller`, image: IMAGE }, /must not contain credentials; pass \{ token \}/],
      [{ plane: `${PLANE}/?`, image: IMAGE }, /must not contain a query or a fragment/],
      [{ plane: PLANE }, /image must be an image reference/],
      [{ plane: PLANE, image: 'Not An Image' }, /image must be an image reference .*got an invalid one/],
      [{ plane: PLANE, image: IMAGE, cluster: '' }, /cluster must be a non-empty string/],
      [{ plane: PLANE, image: IMAGE, token: `${PLANE_TOKEN}\n` }, /token contains whitespace/],
      [{ plane: PLANE, image: IMAGE, account: 'acme' }, /account is not used with plane/],
    ]
    for (const [init, message] of bad) {
      let error: unknown
      try {
        new Jamsocket(init as never)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(TypeError)
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).not.toContain(PLANE_TOKEN)
    }
  })

  it('a trailing slash on the controller URL is removed; registries with a port are valid images', () => {
    const jamsocket = new Jamsocket({ plane: `${PLANE}/`, image: 'localhost:5000/acme/editor' })
    expect(jamsocket.apiUrl).toBe(PLANE)
  })

  it('reads PLANE_CONTROLLER_URL, PLANE_IMAGE, PLANE_CLUSTER, PLANE_POOL and PLANE_TOKEN', async () => {
    const fetch = recordingFetch(json(PLANE_CONNECT))
    const jamsocket = Jamsocket.fromEnv(
      { PLANE_CONTROLLER_URL: PLANE, PLANE_IMAGE: IMAGE, PLANE_CLUSTER: 'plane.acme.dev', PLANE_POOL: 'gpu', PLANE_TOKEN },
      { fetch },
    )
    await jamsocket.connect({ key: 'k' })
    expect(fetch.calls[0]!.url).toBe(`${PLANE}/ctrl/connect`)
    expect(fetch.calls[0]!.headers.authorization).toBe(`Bearer ${PLANE_TOKEN}`)
    expect(bodyOf(fetch.calls[0]!).spawn_config).toEqual({ cluster: 'plane.acme.dev', pool: 'gpu', executable: { image: IMAGE } })
  })

  it('precedence: JAMSOCKET_DEV=true, then PLANE_CONTROLLER_URL, then the hosted JAMSOCKET_* credentials', () => {
    const hosted = { JAMSOCKET_ACCOUNT: 'acme', JAMSOCKET_TOKEN: 'tok-123456', JAMSOCKET_SERVICE: 'editor' }
    const plane = { PLANE_CONTROLLER_URL: PLANE, PLANE_IMAGE: IMAGE }
    expect(Jamsocket.fromEnv({ ...hosted, ...plane, JAMSOCKET_DEV: 'true' }).target).toBe('dev')
    expect(Jamsocket.fromEnv({ ...hosted, ...plane }).target).toBe('plane')
    expect(Jamsocket.fromEnv({ ...hosted, PLANE_CONTROLLER_URL: '' }).target).toBe('hosted')
  })

  it('PLANE_CONTROLLER_URL without PLANE_IMAGE says what is missing', () => {
    expect(() => Jamsocket.fromEnv({ PLANE_CONTROLLER_URL: PLANE })).toThrow('Jamsocket.fromEnv(): PLANE_IMAGE must be provided in the environment with PLANE_CONTROLLER_URL')
  })
})
