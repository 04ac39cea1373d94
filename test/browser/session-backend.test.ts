/**
 * SessionBackend's contract where Chromium adds nothing: callbacks on something that already
 * happened, cancelling them, and status()'s typed errors. Real node:http servers on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { HTTPError, NetworkError, ProtocolError, SessionBackend } from '../../src/browser/index.js'
import { frame, startSseServer, stateOf, until, type Connection, type SseServer } from '../helpers/sse-server.js'

const servers: SseServer[] = []
const backends: SessionBackend[] = []
afterEach(async () => {
  for (const backend of backends.splice(0)) backend.destroy()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function serve(script: (c: Connection) => void | Promise<void>): Promise<SseServer> {
  const server = await startSseServer(script)
  servers.push(server)
  return server
}

function follow(...args: ConstructorParameters<typeof SessionBackend>): SessionBackend {
  const backend = new SessionBackend(...args)
  backends.push(backend)
  return backend
}

describe('SessionBackend', () => {
  it('onTerminated and onReady call back at once, synchronously, when that already happened', async () => {
    const server = await serve((c) => c.status(500))
    const ended = follow(server.connectResponse('b1', 'terminated'))
    let calls = 0
    ended.onTerminated(() => calls++)
    expect(calls).toBe(1)
    expect([ended.isTerminated(), ended.isReady()]).toEqual([true, false])
    await ended.onTerminatedPromise
    expect(server.hits('/stream')).toBe(0) // nothing left to follow

    const ready = follow(server.connectResponse('b2', 'ready'))
    ready.onReady(() => calls++)
    expect(calls).toBe(2)
    await ready.onReadyPromise
  })

  it('a cancelled onReady/onTerminated callback is not called; the others are, once', async () => {
    let release!: () => void
    const go = new Promise<void>((resolve) => (release = resolve))
    const server = await serve(async (c) => {
      if (!c.path.endsWith('/stream')) return c.status(404)
      await c.write(frame(stateOf('starting', 1)))
      await go
      await c.write(frame(stateOf('ready', 2)) + frame(stateOf('terminating', 3)) + frame(stateOf('terminated', 4)))
    })
    const backend = follow(server.connectResponse('b1', 'scheduled'))
    const calls: string[] = []
    backend.onReady(() => calls.push('ready, cancelled'))()
    backend.onTerminated(() => calls.push('terminated, cancelled'))()
    backend.onReady(() => calls.push('ready'))
    backend.onTerminated(() => calls.push('terminated'))
    await until(() => server.hits('/stream') === 1, 'the stream')
    release()
    await backend.onTerminatedPromise
    expect(calls).toEqual(['ready', 'terminated'])
  })

  it('status() fetches status_url once; a failure rejects with HTTPError, ProtocolError or NetworkError', async () => {
    const server = await serve((c) => {
      if (c.path.endsWith('/stream')) return c.status(204) // following stops: only status() is under test
      if (c.path.includes('/ok/')) return c.status(200, { 'content-type': 'application/json' }, JSON.stringify(stateOf('ready')))
      if (c.path.includes('/gone/')) return c.status(404, {}, 'no such backend')
      return c.status(200, { 'content-type': 'text/html' }, '<html>login</html>')
    })
    expect(await follow(server.connectResponse('ok', 'ready')).status()).toEqual(stateOf('ready'))
    const missing = await follow(server.connectResponse('gone')).status().catch((e: unknown) => e)
    expect(HTTPError.isInstance(missing) && (missing as HTTPError).code).toBe(404)
    expect(ProtocolError.isInstance(await follow(server.connectResponse('html')).status().catch((e: unknown) => e))).toBe(true)
    const response = server.connectResponse('down')
    await server.close()
    servers.length = 0
    expect(NetworkError.isInstance(await follow(response).status().catch((e: unknown) => e))).toBe(true)
  })
})
