/**
 * Server rendering (renderToString in Node, no DOM): the upstream README's tree renders its
 * children with useReady() false, touches no `window`, and makes no request.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createElement, type ReactNode } from 'react'
import { renderToString } from 'react-dom/server'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  JamsocketError,
  SessionBackendProvider,
  SocketIOProvider,
  useEventListener,
  useReady,
  useSend,
  useSessionBackend,
  useSocket,
  useStatus,
  type ConnectResponse,
} from '../../src/socketio/index.js'

let server: Server
let connections = 0
let base = ''

beforeEach(async () => {
  connections = 0
  server = createServer((_req, res) => res.end('{}'))
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterEach(async () => {
  vi.restoreAllMocks()
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
})

function response(status: ConnectResponse['status']): ConnectResponse {
  return {
    backend_id: 'b1',
    spawned: true,
    status,
    token: 'tok',
    url: `${base}/tok/`,
    status_url: `${base}/v2/backend/b1/status`,
    ready_url: `${base}/v2/backend/b1/ready`,
    secret_token: 'secret',
  }
}

function Probe(): ReactNode {
  const ready = useReady()
  const { status } = useStatus()
  const send = useSend()
  const socket = useSocket()
  const handle = useSessionBackend()
  useEventListener('update', () => {})
  send('early', 1) // queued: nothing can be sent on a server
  return `ready:${ready} status:${status} socket:${socket ? 'open' : 'none'} backend:${handle.backend_id}`
}

function app(connectResponse: ConnectResponse): ReactNode {
  return createElement(SessionBackendProvider, { connectResponse }, createElement(SocketIOProvider, { url: connectResponse.url }, createElement(Probe)))
}

describe('server rendering', () => {
  it('renders the children with useReady() false, the connect status, no socket, no window and no request', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch')
    expect(typeof (globalThis as { window?: unknown }).window).toBe('undefined')
    const html = renderToString(app(response('ready')))
    expect(html).toBe('ready:false status:ready socket:none backend:b1')
    expect(fetchSpy).not.toHaveBeenCalled()
    fetchSpy.mockRestore()
    // A request of our own gets there: had rendering opened a connection, it would be counted too.
    await fetch(`${base}/sentinel`).then((r) => r.text())
    expect(connections).toBe(1)
  })

  it('a hook outside its provider throws a JamsocketError that names the provider', () => {
    const hooks: [string, () => unknown, string][] = [
      ['useReady', useReady, 'SessionBackendProvider'],
      ['useStatus', useStatus, 'SessionBackendProvider'],
      ['useSessionBackend', useSessionBackend, 'SessionBackendProvider'],
      ['useSend', useSend, 'SocketIOProvider'],
      ['useSocket', useSocket, 'SocketIOProvider'],
    ]
    for (const [name, hook, provider] of hooks) {
      const Lonely = () => (hook(), null)
      let thrown: unknown
      try {
        renderToString(createElement(Lonely))
      } catch (error) {
        thrown = error
      }
      expect(JamsocketError.isInstance(thrown), name).toBe(true)
      expect((thrown as Error).message).toBe(`${name} must be used within a ${provider}`)
    }
  })
})
