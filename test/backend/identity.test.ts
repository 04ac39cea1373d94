/**
 * `identity()` and `checkSecret()` on real requests through the local server's proxy, from a Node
 * `IncomingMessage` and from a Fetch `Request` built from it; malformed headers on a real server.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { checkSecret, identity, IdentityError, type Identity } from '../../src/backend/index.js'
import type { BackendHandle, Jamsocket } from '../../src/index.js'
import { startBackendServer } from './helpers.js'

let jamsocket: Jamsocket
beforeAll(async () => {
  ;({ jamsocket } = await startBackendServer())
})

async function ready(request: Parameters<Jamsocket['connect']>[0]): Promise<BackendHandle> {
  const handle = await jamsocket.connect(request)
  await handle.waitUntilReady({ timeoutMs: 15_000 })
  return handle
}

async function whoami(handle: BackendHandle, headers: Record<string, string> = {}): Promise<{ node: Identity | null; fetch: Identity | null }> {
  const response = await fetch(`${handle.url}whoami`, { headers })
  expect(response.status).toBe(200)
  return (await response.json()) as { node: Identity | null; fetch: Identity | null }
}

describe('identity()', () => {
  test('gives the connect request’s user and auth, the backend id and the original path, from a Node request and a Fetch Request', async () => {
    const handle = await ready({ key: 'identity-1', user: 'ada', auth: { role: 'editor', n: 1 } })
    const who = await whoami(handle)
    const expected = { user: 'ada', auth: { role: 'editor', n: 1 }, backendId: handle.backend_id, path: `/${handle.token}/whoami` }
    expect(who.node).toEqual(expected)
    expect(who.fetch).toEqual(expected)
    handle.close()
  })

  test('a connect without user or auth gives no user and {} as auth', async () => {
    const handle = await ready({ key: 'identity-2' })
    const who = await whoami(handle)
    expect(who.node).toEqual({ backendId: handle.backend_id, auth: {}, path: `/${handle.token}/whoami` })
    expect(who.node).not.toHaveProperty('user')
    handle.close()
  })

  test('x-verified-* headers sent by a client are dropped before they reach the backend', async () => {
    const spoofed = {
      'x-verified-username': 'mallory',
      'x-verified-user-data': '{"role":"admin"}',
      'x-verified-backend': 'someone-else',
      'x-verified-path': '/elsewhere',
    }
    const withUser = await ready({ key: 'identity-3', user: 'ada', auth: { role: 'viewer' } })
    const who = await whoami(withUser, spoofed)
    expect(who.node).toEqual({ user: 'ada', auth: { role: 'viewer' }, backendId: withUser.backend_id, path: `/${withUser.token}/whoami` })
    expect(who.fetch).toEqual(who.node)

    // Without a user in the connect, a spoofed user name must not appear either.
    const anonymous = await ready({ key: 'identity-4' })
    const nobody = await whoami(anonymous, spoofed)
    expect(nobody.node?.user).toBeUndefined()
    expect(nobody.node?.auth).toEqual({})
    withUser.close()
    anonymous.close()
  })

  test('a user name and auth data outside ASCII arrive as the same text', async () => {
    const handle = await ready({ key: 'identity-5', user: 'Zoë 李', auth: { name: 'Zoë 李 🎉' } })
    const who = await whoami(handle)
    expect(who.node?.user).toBe('Zoë 李')
    expect(who.node?.auth).toEqual({ name: 'Zoë 李 🎉' })
    expect(who.fetch).toEqual(who.node)
    handle.close()
  })

  test('is undefined for a request that did not come through a proxy', () => {
    expect(identity({ headers: {} })).toBeUndefined()
    expect(identity(new Request('http://backend/'))).toBeUndefined()
    // Identity headers without the backend header are not an identity either.
    expect(identity({ headers: { 'x-verified-username': 'ada' } })).toBeUndefined()
  })
})

describe('identity() on malformed headers', () => {
  // A real server whose handler uses identity(); the requests go to it directly, with raw headers.
  let server: Server
  let url: string
  beforeAll(async () => {
    server = createServer((req, res) => {
      try {
        res.end(JSON.stringify(identity(req) ?? null))
      } catch (error) {
        res.writeHead(400).end(JSON.stringify({ name: (error as Error).name, header: (error as IdentityError).header, isIdentityError: IdentityError.isInstance(error) }))
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('an x-verified-user-data that is not a JSON object is an IdentityError the handler can answer, never a crash', async () => {
    for (const data of ['{not json', '[1,2]', 'null', '"text"', '42']) {
      const response = await fetch(url, { headers: { 'x-verified-backend': 'b1', 'x-verified-user-data': data } })
      expect(response.status, data).toBe(400)
      expect(await response.json()).toEqual({ name: 'IdentityError', header: 'x-verified-user-data', isIdentityError: true })
    }
    // The server is still there.
    const ok = await fetch(url, { headers: { 'x-verified-backend': 'b1', 'x-verified-user-data': '{"a":1}' } })
    expect(await ok.json()).toEqual({ backendId: 'b1', auth: { a: 1 } })
  })

  test('a request without headers is a TypeError, not a crash inside', () => {
    expect(() => identity(undefined as never)).toThrow(TypeError)
    expect(() => identity({} as never)).toThrow(TypeError)
  })
})

describe('checkSecret()', () => {
  let handle: BackendHandle
  beforeAll(async () => {
    handle = await ready({ key: 'secret-1', user: 'ada' })
  })
  afterAll(() => handle.close())

  async function post(body: string, headers: Record<string, string> = {}): Promise<{ status: number; fetch: boolean }> {
    const response = await fetch(`${handle.url}secret`, { method: 'POST', body, headers })
    return { status: response.status, ...((await response.json()) as { fetch: boolean }) }
  }

  test('accepts the connect response’s secret_token sent outside the URL', async () => {
    expect(handle.secret_token).toBeTruthy()
    expect(await post(handle.secret_token!)).toEqual({ status: 200, fetch: true })
    expect(await post(JSON.stringify({ secret: handle.secret_token }), { 'content-type': 'application/json' })).toEqual({ status: 200, fetch: true })
  })

  test('refuses a missing, empty, wrong, shorter or longer secret, and one that is not a string', async () => {
    const secret = handle.secret_token!
    for (const wrong of ['', 'wrong', secret.slice(0, -1), `${secret}x`, secret.toUpperCase() === secret ? secret.toLowerCase() : secret.toUpperCase()]) {
      expect(await post(wrong), wrong).toEqual({ status: 403, fetch: false })
    }
    for (const notText of [null, 42, [secret], { secret }]) {
      expect(await post(JSON.stringify({ secret: notText }), { 'content-type': 'application/json' })).toEqual({ status: 403, fetch: false })
    }
    expect(await post('{}', { 'content-type': 'application/json' })).toEqual({ status: 403, fetch: false })
  })

  test('a client cannot choose the secret by sending x-verified-secret itself', async () => {
    expect(await post('forged', { 'x-verified-secret': 'forged' })).toEqual({ status: 403, fetch: false })
  })

  test('is false without an x-verified-secret, or with an empty one (static tokens have none)', () => {
    expect(checkSecret({ headers: {} }, 'anything')).toBe(false)
    expect(checkSecret({ headers: { 'x-verified-secret': '' } }, '')).toBe(false)
    expect(checkSecret(new Request('http://backend/', { headers: { 'x-verified-secret': 's3cret' } }), 's3cret')).toBe(true)
  })
})
