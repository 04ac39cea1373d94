/**
 * What a backend is given: a small base environment plus what the developer and the request pass
 * (never the server's secrets), no loader variables or forged names from a request, keys of a sane
 * size, the address to bind, and an API that wants a credential once it is reachable from the network.
 */
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { resolveDevOptions } from '../../src/dev/options.js'
import { Jamsocket } from '../../src/index.js'
import { connectRaw, rawRequest, startServer, waitStatus } from './helpers.js'

async function allEnv(url: string): Promise<Record<string, string>> {
  return (await (await fetch(`${url}allenv`)).json()) as Record<string, string>
}

async function connectStatus(apiUrl: string, body: unknown): Promise<{ status: number; message: string }> {
  const response = await fetch(`${apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: JSON.stringify(body) })
  const text = await response.text()
  return { status: response.status, message: response.status === 200 ? '' : (JSON.parse(text) as { error: { message: string } }).error.message }
}

describe('backend environment', () => {
  const saved = { ...process.env }
  beforeEach(() => {
    process.env.AWS_SECRET_ACCESS_KEY = 'server-secret'
    process.env.JAMSOCKET_TOKEN = 'server-token'
    process.env.LC_TIME = 'C'
  })
  afterEach(() => {
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'JAMSOCKET_TOKEN', 'LC_TIME']) {
      if (saved[name] === undefined) delete process.env[name]
      else process.env[name] = saved[name]
    }
  })

  it("starts from a small base plus what the developer passed and the request's env, never the server's secrets", async () => {
    const server = await startServer('listen', { env: { GIVEN: 'by developer', LANG: undefined } })
    const cr = await connectRaw(server, { key: 'env', spawn: { executable: { env: { FROM_REQUEST: 'yes' } } } })
    await waitStatus(server, cr.backend_id, 'ready')
    const env = await allEnv(cr.url)
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined()
    expect(env.JAMSOCKET_TOKEN).toBeUndefined()
    expect(env.PATH).toBe(process.env.PATH)
    expect(env.LC_TIME).toBe('C')
    expect(env.LANG).toBeUndefined()
    expect(env.GIVEN).toBe('by developer')
    expect(env.FROM_REQUEST).toBe('yes')
    expect(env.HOST).toBe('127.0.0.1')
    const allowed = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANGUAGE', 'TZ', 'TMPDIR', 'TMP', 'TEMP', 'TERM', 'COLORTERM', 'NO_COLOR', 'GIVEN', 'FROM_REQUEST', 'PORT', 'HOST'])
    // PWD: the wrapper that enters a cgroup is a shell, which sets it to the working directory.
    allowed.add('PWD')
    const unexpected = Object.keys(env).filter((name) => process.env[name] !== undefined && !allowed.has(name) && !name.startsWith('LC_'))
    expect(unexpected).toEqual([])
  })

  it("gives a backend a PORT below the OS's ephemeral range, so no port-0 listener or outgoing socket can take it before the backend listens", async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0])
    const server = await startServer('listen')
    const ports: number[] = []
    for (const key of ['port-a', 'port-b', 'port-c']) {
      const cr = await connectRaw(server, { key })
      await waitStatus(server, cr.backend_id, 'ready')
      ports.push(Number((await allEnv(cr.url)).PORT))
    }
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(low - 10000)
      expect(port).toBeLessThan(low)
    }
  })

  it('refuses loader variables in the request env with 400 naming the variable, unless the server allows them', async () => {
    const server = await startServer('listen')
    for (const name of ['NODE_OPTIONS', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'DYLD_INSERT_LIBRARIES', 'PATH', 'PYTHONPATH', 'BASH_ENV', 'GLIBC_TUNABLES']) {
      const { status, message } = await connectStatus(server.apiUrl, { key: `loader-${name}`, spawn: { executable: { env: { [name]: '/tmp/evil' } } } })
      expect(status, name).toBe(400)
      expect(message).toContain(name)
    }
    expect((await (await fetch(`${server.apiUrl}/v2/account/a/backends`)).json()) as unknown).toEqual({ running_backends: [] })
    const permissive = await startServer('listen', { allowLoaderEnv: true })
    const cr = await connectRaw(permissive, { key: 'allowed', spawn: { executable: { env: { NODE_OPTIONS: '--no-warnings' } } } })
    await waitStatus(permissive, cr.backend_id, 'ready')
    expect((await allEnv(cr.url)).NODE_OPTIONS).toBe('--no-warnings')
  })

  it('refuses env names that are not variable names, such as SESSION_BACKEND_ID=forged', async () => {
    const server = await startServer('listen')
    for (const name of ['SESSION_BACKEND_ID=forged', '', '1ABC', 'A B', 'A\nB']) {
      const { status, message } = await connectStatus(server.apiUrl, { key: 'forge', spawn: { executable: { env: { [name]: 'x' } } } })
      expect(status, JSON.stringify(name)).toBe(400)
      expect(message).toContain('not a valid variable name')
    }
    const nul = await connectStatus(server.apiUrl, { key: 'nul', spawn: { executable: { env: { OK: 'a\0b' } } } })
    expect(nul).toMatchObject({ status: 400, message: expect.stringContaining('OK') })
    const long = await connectStatus(server.apiUrl, { key: 'long', spawn: { executable: { env: { LONG: 'x'.repeat(32 * 1024 + 1) } } } })
    expect(long).toMatchObject({ status: 400, message: expect.stringContaining('LONG') })
  })

  it('refuses a key over 4096 bytes at connect with 400 (it would not fit the environment), and runs one of 4096', async () => {
    const server = await startServer('listen')
    const big = await connectStatus(server.apiUrl, { key: 'k'.repeat(200 * 1024) })
    expect(big.status).toBe(400)
    expect(big.message).toContain('key')
    expect((await connectStatus(server.apiUrl, { key: '€'.repeat(1366) })).status).toBe(400)
    const cr = await connectRaw(server, { key: 'k'.repeat(4096) })
    expect(await waitStatus(server, cr.backend_id, 'ready')).toMatchObject({ status: 'ready' })
  })

  it('finds a backend that listens only on ::1 (it is told HOST=127.0.0.1), proxies to it there, and says so in the log', async () => {
    const server = await startServer('listen', { startupTimeoutMs: 5000 })
    const cr = await connectRaw(server, { key: 'v6-only', spawn: { executable: { env: { FIXTURE_LISTEN_HOST: '::1' } } } })
    expect(await waitStatus(server, cr.backend_id, 'ready')).toMatchObject({ status: 'ready' })
    expect(server.events.some((e) => e.type === 'message' && e.text.includes('answers on ::1 only'))).toBe(true)
    // The proxy reaches it where it answered.
    const response = await fetch(`${cr.url}hello`)
    expect(response.status).toBe(200)
    expect(((await response.json()) as { url: string }).url).toBe('/hello')
  })

  it('tells a backend on an IPv6 loopback server to bind HOST=::1', async () => {
    const server = await startServer('listen', { host: '::1' })
    const cr = await connectRaw(server, { key: 'v6-host' })
    await waitStatus(server, cr.backend_id, 'ready')
    expect((await allEnv(cr.url)).HOST).toBe('::1')
  })
})

describe('API credential', () => {
  it('generates a token when the host is not a loopback address, and none on loopback', () => {
    expect(resolveDevOptions({ command: ['x'], host: '0.0.0.0' }).apiToken).toMatch(/^[\w-]{40,}$/)
    expect(resolveDevOptions({ command: ['x'], host: '192.168.1.5' }).apiToken).toBeDefined()
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) expect(resolveDevOptions({ command: ['x'], host }).apiToken).toBeUndefined()
    expect(() => resolveDevOptions({ command: ['x'], apiToken: 'short' })).toThrow(/apiToken/)
  })

  it('on a non-loopback host, refuses API calls without the token (401) and serves a client that has it', async () => {
    const server = await startServer('listen', { host: '0.0.0.0' })
    const token = server.apiToken!
    expect(token).toBeDefined()
    const url = `http://127.0.0.1:${server.port}`
    for (const authorization of [undefined, 'Bearer -', `Bearer ${token}x`]) {
      const response = await rawRequest(`${url}/v2/service/-/-/connect`, { method: 'POST', body: '{}', headers: authorization ? { authorization } : {} })
      expect(response.status, authorization).toBe(401)
      expect(response.body).not.toContain(token)
    }
    expect((await rawRequest(`${url}/v2/account/-/backends`)).status).toBe(401)
    const devClient = new Jamsocket({ dev: true, port: server.port, retry: false })
    await expect(devClient.connect({ key: 'no' })).rejects.toMatchObject({ code: 401 })
    const jamsocket = new Jamsocket({ account: '-', service: '-', token, apiUrl: url, retry: false })
    const handle = await jamsocket.connect({ key: 'with-token' })
    // The public routes need no token: a browser follows status with the backend id alone.
    expect((await fetch(handle.status_url)).status).toBe(200)
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    await jamsocket.terminate(handle.backend_id)
    handle.close()
  })

  it('requires an apiToken given explicitly on loopback too', async () => {
    const server = await startServer('listen', { apiToken: 'a-token-of-enough-length' })
    expect((await rawRequest(`${server.apiUrl}/v2/account/-/backends`)).status).toBe(401)
    expect((await rawRequest(`${server.apiUrl}/v2/account/-/backends`, { headers: { authorization: 'Bearer a-token-of-enough-length' } })).status).toBe(200)
  })
})
