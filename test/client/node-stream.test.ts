/**
 * The node:http transport the client gives its handles on Node: what the status follower reads of
 * it (status, headers, body chunks, end, cancel, abort, broken connections) against real servers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { statusFetch } from '../../src/client/node-stream.js'
import { BackendHandle, Jamsocket } from '../../src/index.js'
import { frame, startSseServer, stateOf, until, type SseServer } from '../helpers/sse-server.js'

const servers: SseServer[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function serve(script: Parameters<typeof startSseServer>[0]): Promise<SseServer> {
  const server = await startSseServer(script)
  servers.push(server)
  return server
}

const stream = { headers: { accept: 'text/event-stream' } }

async function readAll(response: Response): Promise<string> {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text
    text += decoder.decode(value, { stream: true })
  }
}

describe('node:http status transport', () => {
  const fetch = statusFetch()!

  it('is available on this Node', () => {
    expect(fetch).toBeTypeOf('function')
  })

  it('follows redirects as fetch does, keeping the stream headers, and refuses a redirect loop', async () => {
    const server = await serve(async (c) => {
      if (c.path === '/old') return c.status(307, { location: '/moved' })
      if (c.path === '/moved') return c.status(301, { location: `${server.origin}/s` })
      if (c.path === '/loop') return c.status(302, { location: '/loop' })
      await c.write(`data:${c.lastEventId ?? 'none'}\n\n`)
      c.end()
    })
    const response = await fetch(`${server.origin}/old`, { headers: { accept: 'text/event-stream', 'last-event-id': 'ready' } })
    expect(response.status).toBe(200)
    expect(await readAll(response)).toBe('data:ready\n\n')
    const loop = await fetch(`${server.origin}/loop`, stream).catch((error: unknown) => error)
    expect(loop).toBeInstanceOf(TypeError)
    expect(((loop as TypeError).cause as Error).message).toMatch(/redirect count exceeded/)
  })

  it('delivers the body of an event stream chunk by chunk, in order, to its end', async () => {
    const server = await serve(async (c) => {
      await c.write('data:1\n\n')
      await c.write('data:2\n')
      await c.write('\n')
      c.end()
    })
    const response = await fetch(`${server.origin}/s`, stream)
    expect(response.status).toBe(200)
    expect(response.ok).toBe(true)
    expect(response.headers.get('Content-Type')).toBe('text/event-stream')
    expect(await readAll(response)).toBe('data:1\n\ndata:2\n\n')
  })

  it('sends the request headers (Last-Event-ID) and exposes status and headers of an error answer', async () => {
    const server = await serve((c) => c.status(503, { 'retry-after': '7' }, 'busy'))
    const response = await fetch(`${server.origin}/s`, { headers: { accept: 'text/event-stream', 'last-event-id': 'ready' } })
    expect(server.requests[0]!.lastEventId).toBe('ready')
    expect(response.status).toBe(503)
    expect(response.ok).toBe(false)
    expect(response.headers.get('retry-after')).toBe('7')
    expect(response.headers.get('x-none')).toBeNull()
    await response.body!.cancel()
  })

  it('leaves every other request to the global fetch', async () => {
    const server = await serve((c) => c.status(200, { 'content-type': 'application/json' }, '{}'))
    const spy = vi.spyOn(globalThis, 'fetch')
    await (await fetch(`${server.origin}/status`)).text()
    await (await fetch(`${server.origin}/x`, { method: 'POST', headers: { accept: 'text/event-stream' } })).text()
    expect(spy).toHaveBeenCalledTimes(2)
  })

  it('a refused connection rejects like fetch: a TypeError whose cause carries the code', async () => {
    const server = await serve(() => {})
    const origin = server.origin
    await server.close()
    servers.length = 0
    const error = await fetch(`${origin}/s`, stream).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED')
  })

  it('a connection reset in the middle of the body makes the pending read reject (not end)', async () => {
    const server = await serve(async (c) => {
      await c.write('data:1\n\n')
      c.reset()
    })
    const response = await fetch(`${server.origin}/s`, stream)
    await expect(readAll(response)).rejects.toThrow()
  })

  it('an abort in the middle of the body rejects the pending read with the reason and closes the socket', async () => {
    let gone: Promise<void> | undefined
    const server = await serve(async (c) => {
      gone = c.gone
      await c.write('data:1\n\n')
    })
    const controller = new AbortController()
    const response = await fetch(`${server.origin}/s`, { ...stream, signal: controller.signal })
    const reader = response.body!.getReader()
    await reader.read()
    const pending = reader.read()
    const reason = new Error('stop')
    controller.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await gone
  })

  it('cancel() ends the pending read and closes the socket', async () => {
    let gone: Promise<void> | undefined
    const server = await serve(async (c) => {
      gone = c.gone
      c.open()
    })
    const response = await fetch(`${server.origin}/s`, stream)
    const reader = response.body!.getReader()
    const pending = reader.read()
    await reader.cancel()
    await expect(pending).resolves.toMatchObject({ done: true })
    await gone
  })

  it('handles from the client follow over it across a cut stream, each status once and in order', async () => {
    const lifecycle = ['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminated'] as const
    const transcript = lifecycle.map((status, i) => frame(stateOf(status, i))).join('')
    const server = await serve(async (c) => {
      // First connection: cut in the middle of the `starting` event; then the whole history.
      const text = c.index === 0 ? transcript.slice(0, transcript.indexOf('"starting"') + 3) : transcript
      await c.write(text)
      if (c.index === 0) c.reset()
      else c.end()
    })
    const jamsocket = new Jamsocket({ dev: true })
    const handle = jamsocket.handle(server.connectResponse('b1'))
    const seen: string[] = []
    handle.on('status', (s) => seen.push(s.status))
    await until(() => seen.includes('terminated'), 'terminated')
    expect(seen).toEqual([...lifecycle])
    expect(server.hits('/stream')).toBe(2)
  })

  describe('the default transport of every handle on Node, however it was made', () => {
    const lifecycle = ['scheduled', 'ready', 'terminated'] as const
    const script = async (c: Parameters<Parameters<typeof startSseServer>[0]>[0]) => {
      await c.write(lifecycle.map((status, i) => frame(stateOf(status, i))).join(''))
      c.end()
    }
    const follow = async (handle: BackendHandle) => {
      const seen: string[] = []
      handle.on('status', (s) => seen.push(s.status))
      await until(() => seen.includes('terminated'), 'terminated')
      expect(seen).toEqual([...lifecycle])
    }

    it('new BackendHandle(connectResponse) follows over node:http, as a handle from the client does', async () => {
      const server = await serve(script)
      await follow(new BackendHandle(server.connectResponse('made-by-hand')))
      await follow(new Jamsocket({ dev: true }).handle(server.connectResponse('from-the-client')))
      // fetch (undici) sends sec-fetch-mode on every request; node:http does not.
      expect(server.requests.map((r) => r.secFetchMode)).toEqual([undefined, undefined])
      // The check can tell: a handle given a fetch follows with it.
      await follow(new BackendHandle(server.connectResponse('given-fetch'), { fetch: (input, init) => globalThis.fetch(input, init) }))
      expect(server.requests[2]!.secFetchMode).toBe('cors')
    })

    it("a fetch installed in place of Node's own (a mock, msw, an APM wrapper) is used for the streams of every handle", async () => {
      const server = await serve(script)
      const spy = vi.spyOn(globalThis, 'fetch')
      await follow(new BackendHandle(server.connectResponse('by-hand')))
      await follow(new Jamsocket({ dev: true }).handle(server.connectResponse('client')))
      expect(spy.mock.calls.map(([url]) => String(url))).toEqual([
        `${server.origin}/v2/backend/by-hand/status/stream`,
        `${server.origin}/v2/backend/client/status/stream`,
      ])
    })
  })
})
