/**
 * `socketIdentity()` in a real socket.io server: behind the local server's proxy (both transports),
 * and reached directly (no identity: refused).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { io as connectSocket, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { socketIdentity, type Identity, type IdentitySocketData } from '../../src/backend/index.js'
import type { BackendHandle } from '../../src/index.js'
import { startBackendServer } from './helpers.js'

const sockets: Socket[] = []
afterAll(() => {
  for (const socket of sockets) socket.disconnect()
})

/** Opens socket.io on a backend URL as `@jamsocket/socketio` does (origin + `{path}/socket.io/`). */
function open(url: string, options: Partial<ManagerOptions & SocketOptions> = {}): Socket {
  const { origin, pathname } = new URL(url)
  const socket = connectSocket(origin, { path: `${pathname.replace(/\/$/, '')}/socket.io/`, reconnection: false, ...options })
  sockets.push(socket)
  return socket
}

/** The greeting, or the connect_error's message. */
function outcome(socket: Socket): Promise<{ hello: string; data: IdentitySocketData } | { refused: string }> {
  return new Promise((resolve) => {
    socket.once('hello', (hello: string, data: IdentitySocketData) => resolve({ hello, data }))
    socket.once('connect_error', (error) => resolve({ refused: error.message }))
  })
}

describe('socketIdentity() behind the proxy', () => {
  let handle: BackendHandle
  let expected: Identity
  beforeAll(async () => {
    const { jamsocket } = await startBackendServer()
    handle = await jamsocket.connect({ key: 'socket-1', user: 'ada', auth: { role: 'editor' } })
    await handle.waitUntilReady({ timeoutMs: 15_000 })
    expected = { user: 'ada', auth: { role: 'editor' }, backendId: handle.backend_id, path: expect.stringMatching(new RegExp(`^/${handle.token}/socket\\.io/`)) as unknown as string }
  })
  afterAll(() => handle.close())

  test.each<[string, Partial<ManagerOptions>]>([
    ['polling, then the WebSocket upgrade', {}],
    ['WebSocket only', { transports: ['websocket'] }],
  ])('gives the socket the connect request’s identity when the page sends the secret in its handshake (%s)', async (_, transports) => {
    const socket = open(handle.url, { auth: { secret_token: handle.secret_token }, ...transports })
    expect(await outcome(socket)).toEqual({ hello: 'hello ada', data: { identity: expected } })
  })

  test('a handshake without the secret, or with a wrong one, is refused with connect_error', async () => {
    for (const auth of [{}, { secret_token: 'wrong' }, { secret_token: '' }, { secret_token: 42 }, { secret: handle.secret_token }]) {
      expect(await outcome(open(handle.url, { auth }))).toEqual({ refused: 'the secret does not match x-verified-secret' })
    }
  })

  test('x-verified-* headers sent in the handshake do not change the identity', async () => {
    const socket = open(handle.url, {
      auth: { secret_token: handle.secret_token },
      transports: ['polling'],
      extraHeaders: { 'x-verified-username': 'mallory', 'x-verified-user-data': '{"role":"admin"}', 'x-verified-secret': 'forged' },
    })
    expect(await outcome(socket)).toEqual({ hello: 'hello ada', data: { identity: expected } })
  })
})

describe('socketIdentity() reached directly', () => {
  test('a connection that did not come through the proxy is refused', async () => {
    const server = createServer()
    const io = new Server(server)
    io.use(socketIdentity())
    io.on('connection', (socket) => socket.emit('hello', 'should not happen', socket.data))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      expect(await outcome(open(url))).toEqual({ refused: 'no verified identity: the connection did not come through the proxy' })
      // Forged identity headers sent directly are the reason backends listen only where the proxy reaches them (HOST).
    } finally {
      await io.close()
    }
  })

  test('a secret function reads the client’s secret from where the app puts it', async () => {
    const server = createServer()
    const io = new Server(server)
    io.use(socketIdentity({ secret: (handshake) => handshake.headers['x-backend-secret'] }))
    io.on('connection', (socket) => socket.emit('hello', 'verified', socket.data))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      // Reached directly, so the test plays the proxy's part and sets the x-verified-* headers itself.
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      const proxied = { 'x-verified-backend': 'b1', 'x-verified-user-data': '{}', 'x-verified-secret': 's3cret' }
      const right = open(url, { extraHeaders: { ...proxied, 'x-backend-secret': 's3cret' }, transports: ['polling'] })
      expect(await outcome(right)).toMatchObject({ hello: 'verified', data: { identity: { backendId: 'b1', auth: {} } } })
      const wrong = open(url, { extraHeaders: { ...proxied, 'x-backend-secret': 'guess' }, transports: ['polling'] })
      expect(await outcome(wrong)).toEqual({ refused: 'the secret does not match x-verified-secret' })
    } finally {
      await io.close()
    }
  })

  test('a secret function that throws refuses the connection instead of crashing the server', async () => {
    const server = createServer()
    const io = new Server(server)
    io.use(
      socketIdentity({
        secret: () => {
          throw new Error('boom')
        },
      }),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
      const socket = open(url, { extraHeaders: { 'x-verified-backend': 'b1', 'x-verified-user-data': '{}' }, transports: ['polling'] })
      expect(await outcome(socket)).toEqual({ refused: 'boom' })
    } finally {
      await io.close()
    }
  })
})
