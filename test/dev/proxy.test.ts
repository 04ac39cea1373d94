/**
 * The proxy end to end: token routing and stripping, identity headers, held requests, WebSockets,
 * CORS, and resilience to backends that misbehave.
 */
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startDevServer, type DevServer, type DevServerOptions } from '../../src/dev/index.js'
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

/**
 * Writes `text` on one raw connection to `base` (`http://host:port`), returns all it answers until the
 * proxy closes. `halfClose`: then shut down the sending side, as `nc -N` and some HTTP/1.0 tools do.
 * `untilClose`: what came until the connection closed, however it closed (a reset included).
 */
function rawExchange(base: string, text: string | string[], { halfClose = false, untilClose = false } = {}): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) })
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (answer += chunk))
    if (untilClose) {
      socket.on('error', () => {})
      socket.on('close', () => resolve(answer))
    } else {
      socket.on('end', () => resolve(answer))
      socket.on('error', reject)
    }
    // Several strings are written one by one (separate packets), one string at once (pipelined).
    for (const part of Array.isArray(text) ? text : [text]) socket.write(part, 'latin1')
    if (halfClose) socket.end()
  })
}

/** `n` GETs of `{url}{path}/{i}` in one string (pipelined), the last with `Connection: close`. */
function pipelined(url: string, path: string, n: number): string {
  const { host, pathname } = new URL(url)
  let text = ''
  for (let i = 0; i < n; i++) text += `GET ${pathname}${path}/${i} HTTP/1.1\r\nHost: ${host}\r\n${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`
  return text
}

/** A GET (or `method`) through node:http: status, headers, body and trailers. */
function get(url: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; trailers: Record<string, string | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, trailers: res.trailers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Splits raw answers into status, headers (lower-cased names) and bodies (Content-Length or chunked). */
function splitAnswers(raw: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = []
  let rest = raw
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    const lines = rest.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim()
    rest = rest.slice(end + 4)
    let body = ''
    const status = Number(lines[0]!.split(' ')[1])
    if (status === 204 || status === 304) {
      // no body
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const eol = rest.indexOf('\r\n')
        const size = parseInt(rest.slice(0, eol), 16)
        body += rest.slice(eol + 2, eol + 2 + size)
        rest = rest.slice(eol + 2 + size + 2)
        if (size === 0) break
      }
    } else {
      const length = Number(headers['content-length'] ?? rest.length)
      body = rest.slice(0, length)
      rest = rest.slice(length)
    }
    out.push({ status, headers, body })
  }
  return out
}

// A backend with the framings the `listen` fixture does not produce (node:http makes them by itself).
const FRAMINGS = `
const { createServer } = require('node:http')
const server = createServer((req, res) => {
  let body = ''
  const chunks = []
  req.on('data', (c) => {
    body += c
    chunks.push(c)
  })
  req.on('end', () => {
    if (req.url === '/bytes') {
      const bytes = Buffer.concat(chunks)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length })
      res.end(bytes)
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' })
      res.write('one,')
      setImmediate(() => {
        res.write('two,')
        res.addTrailers({ 'x-sum': '3' })
        res.end('three')
      })
    } else if (req.url === '/close-delimited') {
      req.socket.end('HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\n\\r\\nuntil the end')
    } else if (req.url === '/garbage') {
      req.socket.end('ICY 200 OK\\r\\n\\r\\nnot http')
    } else if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': '100' })
      res.write('only part')
      setImmediate(() => req.socket.destroy())
    } else if (req.url === '/trailers') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ body, headers: req.rawHeaders, trailers: req.rawTrailers }))
    } else if (req.url === '/tunnels') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(String(tunnels))
    } else if (req.url === '/silent') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(String(silent))
    } else if (req.url.startsWith('/one-at-a-time/')) {
      // Answers after a moment, saying how many requests the backend was answering when this one came.
      active++
      const seen = active
      setTimeout(() => {
        active--
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.end(req.url.slice(15) + ':' + seen)
      }, 5)
    } else if (req.url === '/stall') {
      // Never answered; counted while its connection is open.
      stalled++
      req.socket.on('close', () => stalled--)
    } else if (req.url === '/stalled') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(String(stalled))
    } else if (req.url === '/hop-by-hop') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2, connection: 'keep-alive', 'keep-alive': 'timeout=1, max=3', 'proxy-connection': 'keep-alive', upgrade: 'h2c', 'x-end': 'kept' })
      res.end('ok')
    } else if (req.url === '/no-content') {
      res.writeHead(204)
      res.end()
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 5 })
      res.end(req.method === 'HEAD' ? undefined : 'hello')
    }
  })
})
// Upgrades: answers 101, echoes what it gets, sends a heartbeat every 20 ms, and never ends its side,
// even after the client's FIN (its socket closes only once a write finds the other end gone).
let tunnels = 0
let silent = 0
let active = 0
let stalled = 0
server.on('upgrade', (req, socket) => {
  if (req.url === '/silent') {
    silent++
    socket.on('end', () => socket.destroy())
    socket.on('close', () => silent--)
    return socket.on('error', () => {}) // never answers
  }
  if (req.url === '/refuse') {
    socket.on('error', () => {})
    return socket.end('HTTP/1.1 403 Forbidden\\r\\ncontent-type: text/plain\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n3\\r\\nno!\\r\\n0\\r\\n\\r\\n')
  }
  tunnels++
  const beat = setInterval(() => socket.write('.'), 20)
  socket.on('close', () => {
    tunnels--
    clearInterval(beat)
  })
  socket.on('error', () => {})
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: test\\r\\nConnection: Upgrade\\r\\n\\r\\n')
  socket.on('data', (chunk) => socket.write(chunk))
})
server.listen(Number(process.env.PORT), () => console.log('up'))
process.on('SIGTERM', () => process.exit(0))
`

const own: DevServer[] = []
afterEach(async () => {
  await Promise.all(own.splice(0).map((s) => s.close()))
})

async function framingServer(options: Omit<DevServerOptions, 'command'> = {}): Promise<{ server: DevServer; url: string }> {
  const server = await startDevServer({ command: [process.execPath, '-e', FRAMINGS], port: 0, proxyPort: 0, graceMs: 2000, ...options })
  own.push(server)
  const cr = await connectRaw(server, { key: 'framings' })
  await waitStatus(server, cr.backend_id, 'ready')
  return { server, url: cr.url }
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
    const posted = fetch(`${cr.url}early-post`, { method: 'POST', body: 'held body' })
    expect((await statusOf(server, cr.backend_id)).status).not.toBe('ready')
    const response = await pending
    expect(response.status).toBe(200)
    expect(((await response.json()) as Echo).url).toBe('/early')
    expect(((await (await posted).json()) as Echo).body).toBe('held body')
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
    // Opened before the backend is ready (the proxy holds it), so that it is open from the first
    // moment the idle clock could run, however slow this machine is.
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

  it('stops the backend request when its client disconnects mid-request or mid-upgrade, and keeps serving', async () => {
    const { url } = await framingServer()
    const { hostname, port, host, pathname } = new URL(url)
    const open = async (): Promise<Socket> => {
      const socket = connect({ host: hostname, port: Number(port) })
      socket.on('error', () => {})
      await new Promise((resolve) => socket.once('connect', resolve))
      return socket
    }
    // Mid-request: the backend has the request (and never answers it) when the client goes.
    const client = await open()
    client.write(`GET ${pathname}stall HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
    await eventually(async () => (await get(`${url}stalled`)).body === '1', 'the backend to receive the request')
    // Reset: a FIN alone reads as a half-close, whose requests are still answered.
    client.resetAndDestroy()
    await eventually(async () => (await get(`${url}stalled`)).body === '0', 'the backend request to be stopped')
    // Mid-upgrade: the backend has the upgrade request (and never answers it) when the client goes.
    const upgrading = await open()
    upgrading.write(`GET ${pathname}silent HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n`)
    await eventually(async () => (await get(`${url}silent`)).body === '1', 'the backend to receive the upgrade')
    upgrading.destroy()
    await eventually(async () => (await get(`${url}silent`)).body === '0', 'the backend upgrade request to be stopped')
    expect((await get(`${url}after`)).status).toBe(200)
  })

  it('forwards one request per client connection at a time, so pipelining cannot open more backend connections than proxyMaxConnections', async () => {
    const { url } = await framingServer({ proxyMaxConnections: 2 })
    const n = 40
    const answers = splitAnswers(await rawExchange(url, pipelined(url, 'one-at-a-time', n)))
    // In order, and each one found the backend answering no other request of this connection.
    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: n }, (_, i) => `${i}:1`))
  })

  it('holds pipelined requests to a starting backend one at a time (no listener per request on the connection) and answers them all in order', async () => {
    const warnings: string[] = []
    const onWarning = (warning: Error) => warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      const server = await startServer('listen')
      const cr = await connectRaw(server, { key: 'held-pipe', spawn: { executable: { env: { FIXTURE_DELAY_MS: '300' } } } })
      const n = 30
      const answers = splitAnswers(await rawExchange(cr.url, pipelined(cr.url, 'held', n)))
      expect(answers.map((a) => [a.status, (JSON.parse(a.body) as Echo).url])).toEqual(Array.from({ length: n }, (_, i) => [200, `/held/${i}`]))
      // A warning is emitted on the next tick: let it come before looking.
      await new Promise((resolve) => setImmediate(resolve))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('answers 64 pipelined requests waiting their turn behind a held one, and closes a connection with more (they would all be held in memory), going on serving others', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'deep-pipe', spawn: { executable: { env: { FIXTURE_DELAY_MS: '300' } } } })
    // One held for the starting backend, 64 waiting their turn: all answered, in order.
    const answers = splitAnswers(await rawExchange(cr.url, pipelined(cr.url, 'deep', 65), { untilClose: true }))
    expect(answers.map((a) => (JSON.parse(a.body) as Echo).url)).toEqual(Array.from({ length: 65 }, (_, i) => `/deep/${i}`))
    // One more: the connection closes before any answer.
    expect(await rawExchange(cr.url, pipelined(cr.url, 'deep', 66), { untilClose: true })).toBe('')
    const answer = await fetch(`${cr.url}after`)
    expect(answer.status).toBe(200)
    expect(((await answer.json()) as Echo).url).toBe('/after')
  })

  it('answers a request with more than one Host header with 400, without reaching the backend', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'two-hosts' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, pathname } = new URL(cr.url)
    const [answer] = splitAnswers(await rawExchange(cr.url, `GET ${pathname}x HTTP/1.1\r\nHost: ${host}\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    expect(answer!.status).toBe(400)
    expect(answer!.headers['x-plane-backend-id']).toBeUndefined()
    expect(server.events.some((e) => e.type === 'message' && e.text.startsWith('proxy:'))).toBe(false)
  })

  it('drops the headers a client names in Connection (hop-by-hop), never the identity headers or the framing', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'hop', user: 'ada' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, pathname } = new URL(cr.url)
    const body = 'payload'
    const [answer] = splitAnswers(
      await rawExchange(
        cr.url,
        `POST ${pathname}x HTTP/1.1\r\nHost: ${host}\r\nConnection: close, X-Foo, x-verified-username\r\nConnection: x-bar, content-length, host\r\n` +
          `X-Foo: 1\r\nx-bar: 2\r\nx-kept: 3\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      ),
    )
    const echo = JSON.parse(answer!.body) as Echo
    expect(echo.headers).not.toHaveProperty('x-foo')
    expect(echo.headers).not.toHaveProperty('x-bar')
    expect(echo.headers['x-kept']).toBe('3')
    expect(echo.headers['x-verified-username']).toBe('ada')
    expect(echo.headers.host).toBe(host)
    expect(echo.body).toBe(body)
  })

  it('answers pipelined requests in order on one connection, including a chunked request body', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'pipe' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, pathname } = new URL(cr.url)
    const answer = await rawExchange(
      cr.url,
      `GET ${pathname}first HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `POST ${pathname}second HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n` +
        `PUT ${pathname}third HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nwxyz`,
    )
    const echoes = splitAnswers(answer).map((a) => JSON.parse(a.body) as Echo)
    expect(echoes.map((e) => [e.method, e.url, e.body])).toEqual([
      ['GET', '/first', ''],
      ['POST', '/second', 'abcde'],
      ['PUT', '/third', 'wxyz'],
    ])
  })

  it('answers everything a client sent before it half-closed: a request held for a starting backend, and pipelined ones', async () => {
    const server = await startServer('listen')
    const slow = await connectRaw(server, { key: 'half-close-held', spawn: { executable: { env: { FIXTURE_DELAY_MS: '300' } } } })
    const get = (url: string, path: string) => `GET ${new URL(url).pathname}${path} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`
    const held = splitAnswers(await rawExchange(slow.url, get(slow.url, 'held'), { halfClose: true }))
    expect(held.map((a) => [a.status, (JSON.parse(a.body) as Echo).url])).toEqual([[200, '/held']])
    const piped = splitAnswers(await rawExchange(slow.url, get(slow.url, 'one') + get(slow.url, 'two'), { halfClose: true }))
    expect(piped.map((a) => [a.status, (JSON.parse(a.body) as Echo).url])).toEqual([
      [200, '/one'],
      [200, '/two'],
    ])
  })

  it("drops the backend's hop-by-hop response fields (Connection, Keep-Alive, Proxy-Connection, Upgrade) and passes the rest", async () => {
    const { server, url } = await framingServer()
    const { pathname, host } = new URL(url)
    const [answer] = splitAnswers(await rawExchange(server.proxyUrl, `GET ${pathname}hop-by-hop HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    expect(answer!.status).toBe(200)
    expect(answer!.body).toBe('ok')
    expect(answer!.headers).toMatchObject({ 'x-end': 'kept', 'content-type': 'text/plain', 'content-length': '2', connection: 'close' })
    expect(answer!.headers).not.toHaveProperty('keep-alive')
    expect(answer!.headers).not.toHaveProperty('proxy-connection')
    expect(answer!.headers).not.toHaveProperty('upgrade')
  })

  it('answers its own errors with CORS headers, so that a page on another origin can read a 410', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'cors-errors' })
    const gone = await fetch(cr.url.replace(/\/[^/]+\/$/, '/not-a-token/'), { headers: { origin: 'https://app.example' } })
    expect(gone.status).toBe(410)
    expect(gone.headers.get('access-control-allow-origin')).toBe('*')
  })

  it('passes request bodies split across packets, in Content-Length and chunked framing', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'split' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, pathname } = new URL(cr.url)
    const answer = await rawExchange(cr.url, [
      `POST ${pathname}a HTTP/1.1\r\nHost: ${host}\r\nContent-Le`,
      'ngth: 6\r\n\r\nhel',
      `lo!POST ${pathname}b HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r`,
      '\nbody\r\n0\r\n',
      '\r\n',
    ])
    expect(splitAnswers(answer).map((a) => (JSON.parse(a.body) as Echo).body)).toEqual(['hello!', 'body'])
  })

  it('routes each request on one client connection by its own token (switching backends)', async () => {
    const server = await startServer('listen')
    const one = await connectRaw(server, { key: 'one' })
    const two = await connectRaw(server, { key: 'two' })
    await waitStatus(server, one.backend_id, 'ready')
    await waitStatus(server, two.backend_id, 'ready')
    const { host } = new URL(one.url)
    const get = (url: string, last = false) => `GET ${new URL(url).pathname}x HTTP/1.1\r\nHost: ${host}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`
    const answers = splitAnswers(await rawExchange(one.url, get(one.url) + get(two.url) + get(one.url, true)))
    expect(answers.map((a) => a.headers['x-plane-backend-id'])).toEqual([one.backend_id, two.backend_id, one.backend_id])
    expect(answers.map((a) => (JSON.parse(a.body) as Echo).headers['x-verified-backend'])).toEqual([one.backend_id, two.backend_id, one.backend_id])
  })

  it('relays chunked responses with their trailers, HEAD and 204 answers without bodies, and close-delimited bodies', async () => {
    const { url } = await framingServer()
    // The chunks on the wire are Node's business on both sides; what arrives is the body and its trailers.
    const chunked = await get(`${url}chunked`)
    expect(chunked).toMatchObject({ status: 200, body: 'one,two,three', trailers: { 'x-sum': '3' } })
    expect(chunked.headers['x-plane-backend-id']).toBeDefined()
    const head = await get(`${url}head`, 'HEAD')
    expect(head).toMatchObject({ status: 200, body: '' })
    expect(head.headers['content-length']).toBe('5')
    expect(await get(`${url}no-content`)).toMatchObject({ status: 204, body: '' })
    expect(await get(`${url}close-delimited`)).toMatchObject({ status: 200, body: 'until the end' })
    // The same on one connection, pipelined: no answer's body runs into the next one.
    const { host, pathname } = new URL(url)
    const raw = await rawExchange(
      url,
      `HEAD ${pathname}head HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET ${pathname}no-content HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET ${pathname}close-delimited HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET ${pathname}x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    )
    const [first, ...rest] = raw.split(/(?=HTTP\/1\.1 \d{3} )/)
    expect(first).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n$/)
    // Clients are told how long an idle connection stays open, so that they close theirs first.
    expect(first!.toLowerCase()).toContain('\r\nkeep-alive: timeout=60\r\n')
    expect(splitAnswers(rest.join('')).map((a) => [a.status, a.body])).toEqual([
      [204, ''],
      [200, 'until the end'],
      [200, 'hello'],
    ])
  })

  it('passes every byte value through unchanged, in bodies that share a packet with their head and larger ones', async () => {
    const { url } = await framingServer()
    for (const size of [256, 40_000]) {
      const bytes = Buffer.alloc(size, 0)
      for (let i = 0; i < size; i++) bytes[i] = (i * 7) % 256
      const response = await fetch(`${url}bytes`, { method: 'POST', body: bytes })
      expect(response.status).toBe(200)
      expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true)
    }
    // Head and binary body in one packet, so the proxy forwards them together.
    const head = `POST ${new URL(url).pathname}bytes HTTP/1.1\r\nHost: ${new URL(url).host}\r\nContent-Length: 256\r\nConnection: close\r\n\r\n`
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))
    const [answer] = splitAnswers(await rawExchange(url, head + bytes.toString('latin1')))
    expect(Buffer.from(answer!.body, 'latin1').equals(bytes)).toBe(true)
  })

  it('answers 502 when the backend answers with something that is not HTTP/1.x, and keeps serving', async () => {
    const { url } = await framingServer()
    expect((await get(`${url}garbage`)).status).toBe(502)
    expect((await get(`${url}fine`)).body).toBe('hello')
  })

  it('cuts the client off when the backend closes mid-response, and keeps serving', async () => {
    const { server, url } = await framingServer()
    const response = await fetch(`${url}cut`)
    expect(response.status).toBe(200)
    await expect(response.text()).rejects.toThrow()
    expect(await (await fetch(`${url}fine`)).text()).toBe('hello')
    const list = (await (await fetch(`${server.apiUrl}/v2/account/a/backends`)).json()) as { running_backends: unknown[] }
    expect(list.running_backends).toHaveLength(1)
  })

  it('answers malformed and oversized request heads with 400 and 431, and CONNECT with 400', async () => {
    const server = await startServer('listen')
    const { host } = new URL(server.proxyUrl)
    expect(await rawExchange(server.proxyUrl, `GET /x HTTP/1.1\r\nHost: ${host}\r\nBad Header: 1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /)
    expect(await rawExchange(server.proxyUrl, `GET /x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /)
    expect(await rawExchange(server.proxyUrl, `GET /x HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /)
    // CONNECT asks for a tunnel to elsewhere: not something a backend answers.
    expect(await rawExchange(server.proxyUrl, `CONNECT example.com:443 HTTP/1.1\r\nHost: ${host}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /)
  })

  it('refuses malformed or ambiguous request framing with 400 and passes nothing after it on (no smuggled request)', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'smuggling', user: 'ada' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, pathname } = new URL(cr.url)
    const hidden = `GET ${pathname}smuggled HTTP/1.1\r\nHost: ${host}\r\nx-verified-username: mallory\r\n\r\n`
    const start = `POST ${pathname}a HTTP/1.1\r\nHost: ${host}\r\n`
    for (const text of [
      `GET ${pathname}a\r\nHost: ${host}\r\n\r\n`,
      `GET ${pathname}a HTTP/2.0\r\nHost: ${host}\r\n\r\n`,
      `G(T ${pathname}a HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      `${start}No colon\r\n\r\n`,
      `${start}A: x\r\n folded\r\n\r\n`,
      `${start}: x\r\n\r\n`,
      `${start}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `${start}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
      `${start}Content-Length: -1\r\n\r\n`,
      `${start}Transfer-Encoding: gzip\r\n\r\n`,
      `${start}Transfer-Encoding: chunked\r\n\r\n0\r\n\n`,
      `${start}Transfer-Encoding: chunked\r\n\r\n0\r\nx-sum: 3\n\r\n`,
      `${start}Transfer-Encoding: chunked\r\n\r\n5\nabcde\r\n0\r\n\r\n`,
      `${start}Transfer-Encoding: chunked\r\n\r\nx\r\n`,
    ]) {
      const answer = await rawExchange(cr.url, text + hidden)
      expect(answer, JSON.stringify(text)).toMatch(/^HTTP\/1\.1 400 /)
      expect(answer, JSON.stringify(text)).not.toContain('smuggled')
    }
  })

  it('answers Expect: 100-continue itself, so the client sends its body, which reaches the backend', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'continue' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { host, hostname, port, pathname } = new URL(cr.url)
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) })
      let text = ''
      socket.setEncoding('latin1')
      socket.on('data', (chunk: string) => {
        // The body goes only after the backend's 100 Continue came through the proxy.
        if (text === '' && chunk.startsWith('HTTP/1.1 100 ')) socket.write('ping')
        text += chunk
      })
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
      socket.write(`POST ${pathname}c HTTP/1.1\r\nHost: ${host}\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n`)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
    const final = splitAnswers(answer.slice(answer.indexOf('\r\n\r\n') + 4))
    expect((JSON.parse(final[0]!.body) as Echo).body).toBe('ping')
  })

  it('sends identity values without control characters (no header injection) and non-ASCII as UTF-8', async () => {
    const server = await startServer('listen')
    const auth = { name: 'Zoë ☃' }
    const cr = await connectRaw(server, { key: 'inject', user: 'ada\r\nx-evil: 1', auth })
    await waitStatus(server, cr.backend_id, 'ready')
    const echo = (await (await fetch(cr.url)).json()) as Echo
    expect(echo.headers).not.toHaveProperty('x-evil')
    expect(echo.headers['x-verified-username']).toBe('adax-evil: 1')
    // node:http reads header bytes as latin1: the bytes are the UTF-8 of the JSON.
    expect(Buffer.from(echo.headers['x-verified-user-data']!, 'latin1').toString('utf8')).toBe(JSON.stringify(auth))
  })

  it('sends identity first and refuses heads with more fields than a Node backend reads (431), so junk fields never push it out', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'many-fields', user: 'ada' })
    await waitStatus(server, cr.backend_id, 'ready')
    let passed = 0
    let refused = 0
    // Around Node's limit of 1,000 fields per head: every head passed on arrives whole, identity included.
    for (let junk = 985; junk <= 1000; junk++) {
      const headers: Record<string, string> = {}
      for (let i = 0; i < junk; i++) headers[`j${i}`] = 'v'
      const answer = await rawRequest(`${cr.url}x`, { headers })
      if (answer.status === 431) {
        refused++
        continue
      }
      passed++
      const echo = JSON.parse(answer.body) as Echo
      expect(echo.headers['x-verified-username']).toBe('ada')
      expect(echo.headers['x-verified-secret']).toBe(cr.secret_token)
      expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1')
      expect(echo.headers[`j${junk - 1}`]).toBe('v')
    }
    expect(passed).toBeGreaterThan(0)
    expect(refused).toBeGreaterThan(0)
  })

  it('drops client header names a backend could read as x-verified-* (any case, underscores for dashes)', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'underscores', user: 'ada' })
    await waitStatus(server, cr.backend_id, 'ready')
    const answer = await rawRequest(cr.url, {
      headers: { x_verified_username: 'admin', X_Verified_Secret: 'guess', 'x-verified_user-data': '{}', x_forwarded_for: '10.0.0.1', 'X-VERIFIED-PATH': '/admin' },
    })
    const echo = JSON.parse(answer.body) as Echo
    const suspicious = Object.keys(echo.headers).filter((name) => /^x[-_](verified|forwarded)[-_]/i.test(name))
    expect(suspicious.sort()).toEqual(['x-forwarded-for', 'x-forwarded-proto', 'x-verified-backend', 'x-verified-path', 'x-verified-secret', 'x-verified-user-data', 'x-verified-username'])
    expect(echo.headers['x-verified-username']).toBe('ada')
    expect(echo.headers['x-verified-path']).toBe(new URL(cr.url).pathname)
  })

  it('passes no request trailer on, so no x-verified-* field sent as a chunked trailer reaches the backend', async () => {
    const { url } = await framingServer()
    const { host, pathname } = new URL(url)
    const [answer] = splitAnswers(
      await rawExchange(
        url,
        `POST ${pathname}trailers HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTrailer: x-verified-username\r\nConnection: close\r\n\r\n` +
          `4\r\nbody\r\n0\r\nx-verified-username: mallory\r\nX_Verified_Secret: guess\r\nx-sum: 4\r\n\r\n`,
      ),
    )
    const echo = JSON.parse(answer!.body) as { body: string; headers: string[]; trailers: string[] }
    expect(echo.body).toBe('body')
    expect([...echo.headers, ...echo.trailers].join('\n')).not.toMatch(/mallory|guess/)
    // Request trailers are not passed on at all.
    expect(echo.trailers).toEqual([])
  })

  it('answers an LF-only head with 400 and closes', async () => {
    const server = await startServer('listen')
    const { host } = new URL(server.proxyUrl)
    expect(await rawExchange(server.proxyUrl, `GET /x HTTP/1.1\nHost: ${host}\n\n`)).toMatch(/^HTTP\/1\.1 400 /)
  })

  it('disconnects a client whose head is not complete by the head deadline, however steadily it trickles bytes (408)', async () => {
    const server = await startServer('listen', { proxyHeadTimeoutMs: 300 })
    const { hostname, port } = new URL(server.proxyUrl)
    const socket = connect({ host: hostname, port: Number(port) })
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (answer += chunk))
    socket.on('error', () => {})
    socket.write('GET /x HTTP/1.1\r\nHost: localhost\r\n')
    // A field line every 20 ms: each byte is activity, the head never completes.
    let n = 0
    const trickle = setInterval(() => socket.writable && socket.write(`x-${n++}: y\r\n`), 20)
    try {
      await new Promise((resolve) => socket.once('close', resolve))
    } finally {
      clearInterval(trickle)
    }
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
  })

  it('caps its client connections, so that connections through the proxy cannot exhaust the server (the API keeps answering)', async () => {
    const server = await startServer('listen', { proxyMaxConnections: 3 })
    const cr = await connectRaw(server, { key: 'cap' })
    await waitStatus(server, cr.backend_id, 'ready')
    const { hostname, port } = new URL(server.proxyUrl)
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: hostname, port: Number(port) })
        socket.once('connect', () => resolve(socket))
        socket.once('error', reject)
      })
    const held = [await open(), await open(), await open()]
    const extra = await open()
    extra.on('error', () => {})
    // The fourth is closed by the proxy without an answer; the API is unaffected.
    await new Promise((resolve) => extra.once('close', resolve))
    expect((await statusOf(server, cr.backend_id)).status).toBe('ready')
    for (const socket of held) socket.destroy()
    await eventually(async () => (await fetch(cr.url).then((r) => r.status).catch(() => 0)) === 200, 'a free slot after the others closed')
  })

  it('passes a refused upgrade on as an answer (its body whole, CORS added) and closes the connection', async () => {
    const { url } = await framingServer()
    const { host, pathname } = new URL(url)
    const answer = await rawExchange(url, `GET ${pathname}refuse HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n`)
    const [refusal] = splitAnswers(answer)
    expect(refusal).toMatchObject({ status: 403, body: 'no!' })
    expect(refusal!.headers['access-control-allow-origin']).toBe('*')
    expect(refusal!.headers['x-plane-backend-id']).toBeDefined()
  })

  it('stops counting an upgrade as activity when the client leaves before the backend answers it (the backend idles out)', async () => {
    const server = await startDevServer({ command: [process.execPath, '-e', FRAMINGS], port: 0, proxyPort: 0, graceMs: 2000, sweepIntervalMs: 20 })
    own.push(server)
    const cr = await connectRaw(server, { key: 'silent', spawn: { max_idle_seconds: 0.3 } })
    await waitStatus(server, cr.backend_id, 'ready')
    const { hostname, port, host, pathname } = new URL(cr.url)
    const client = connect({ host: hostname, port: Number(port) })
    client.on('error', () => {})
    await new Promise((resolve) => client.once('connect', resolve))
    client.write(`GET ${pathname}silent HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n`)
    // Gone once the backend has the upgrade request (and holds it unanswered).
    await eventually(async () => (await get(`${cr.url}silent`)).body === '1', 'the backend to receive the upgrade')
    client.destroy()
    expect(await waitStatus(server, cr.backend_id, 'terminated')).toMatchObject({ termination_reason: 'swept' })
  })

  it('ends a tunnel when the client ends its side, even when the backend never ends its own', async () => {
    const { url } = await framingServer()
    const { hostname, port, host, pathname } = new URL(url)
    const client = connect({ host: hostname, port: Number(port), allowHalfOpen: true })
    let received = ''
    let sent = false
    client.setEncoding('latin1')
    client.on('data', (chunk: string) => {
      received += chunk
      if (received.includes('\r\n\r\n') && !sent) {
        sent = true
        client.write('ping')
      }
      // The echo came back through the tunnel: now the client goes away (FIN).
      if (received.includes('ping') && !client.writableEnded) client.end()
    })
    const ended = new Promise((resolve) => client.once('end', resolve))
    client.write(`GET ${pathname}t HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n`)
    await ended // the proxy closed the client's side too
    expect(received).toMatch(/^HTTP\/1\.1 101 /)
    // …and the backend's socket: a client that went away never keeps a backend connection open.
    await eventually(async () => (await get(`${url}tunnels`)).body === '0', 'the backend socket of the tunnel to close')
  })
})
