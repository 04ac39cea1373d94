/**
 * The browser entries in headless Chromium against the real local server and proxy: the upstream
 * README's tree (SessionBackendProvider > SocketIOProvider > hooks) on a page, a socket.io backend
 * as a real process, status streams counted at a relay in front of the API and sockets counted by
 * the backend's own socket.io server, each once they settle.
 */
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { startDevServer, type DevServer } from '../../src/dev/index.js'
import { renderToString } from 'react-dom/server'
import type { ConnectResponse } from '../../src/wire.js'
import { tree } from './fixtures/app.js'
import type { Harness, Message, MountOptions } from './fixtures/harness-types.js'
import { bundlePage, eventually, launchChromium, relayed, servePage, shows, startGate, StreamCounter, text, watchProblems, type PageServer } from './harness.js'

const backendScript = fileURLToPath(new URL('./fixtures/socket-backend.mjs', import.meta.url))

interface BackendLog {
  received: { event: string; args: ({ json: unknown } | { binary: number[] })[] }[]
  clients: number
  connections: { auth: Record<string, unknown>; transports: string[] }[]
  waitingPolls: number
}

let dev: DevServer
let counter: StreamCounter
let site: PageServer
let browser: Browser
let context: BrowserContext
let jamsocket: Jamsocket
const pages: Page[] = []
let keys = 0

beforeAll(async () => {
  const [script, server, chromium] = await Promise.all([
    bundlePage(fileURLToPath(new URL('./fixtures/page.tsx', import.meta.url))),
    startDevServer({ command: [process.execPath, backendScript], port: 0, proxyPort: 0, graceMs: 2000 }),
    launchChromium(),
  ])
  dev = server
  browser = chromium
  context = await browser.newContext()
  site = await servePage(script)
  counter = await new StreamCounter(dev.apiUrl).start()
  jamsocket = new Jamsocket({ dev: true, port: dev.port })
})

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.close()))
})

afterAll(async () => {
  await browser?.close()
  await Promise.all([site?.close(), counter?.close(), dev?.close()])
})

/** A fresh page, with every console warning and error kept in `problems`. */
async function openPage(): Promise<Page & { problems: string[] }> {
  const page = watchProblems(await context.newPage())
  pages.push(page)
  await page.goto(site.url)
  await page.waitForFunction(() => 'harness' in globalThis)
  return page
}

/** Connects a new backend (its own key); `gate` holds it before it listens. */
async function connect(env: Record<string, string> = {}): Promise<ConnectResponse> {
  const handle = await jamsocket.connect({ key: `doc-${++keys}`, spawn: { executable: { env } } })
  return relayed(handle.toJSON(), counter)
}

async function backendLog(response: ConnectResponse): Promise<BackendLog> {
  const answer = await fetch(`${response.url}log`)
  return (await answer.json()) as BackendLog
}

/** Mounts the tree on the page and waits until its effects have run. */
async function mount(page: Page, response: ConnectResponse, options: MountOptions = {}): Promise<void> {
  await page.evaluate(([r, o]) => (globalThis as unknown as { harness: Harness }).harness.mount(r, o), [response, options] as const)
  await eventually(() => run(page, (h) => h.mounted()), 'the component to mount')
}

function run<T>(page: Page, fn: (harness: Harness) => T): Promise<T> {
  return page.evaluate(`(${fn.toString()})(window.harness)`) as Promise<T>
}


describe('SessionBackendProvider + SocketIOProvider in Chromium', () => {
  it('StrictMode (mount, unmount, mount) leaves one open status stream and one socket; unmount closes both', async () => {
    const response = await connect()
    const page = await openPage()
    await mount(page, response, { strict: true })
    await eventually(() => run(page, (h) => h.connected()), 'the socket to connect')
    await eventually(async () => counter.open(response.backend_id) === 1 && (await backendLog(response)).clients === 1, 'one stream and one socket')
    expect(counter.opened(response.backend_id)).toBe(1)
    expect((await backendLog(response)).connections).toHaveLength(1)

    await run(page, (h) => h.unmount())
    await eventually(async () => counter.open(response.backend_id) === 0 && (await backendLog(response)).clients === 0, 'no stream and no socket')
    expect(page.problems).toEqual([])
  })

  it('messages sent before ready arrive once each, in order, as given (binary too), after the seed pattern kept its place', async () => {
    const gate = await startGate()
    try {
      const response = await connect({ GATE_URL: gate.url })
      const page = await openPage()
      // Uint8Array does not survive page.evaluate's serialisation: build it in the page.
      await page.evaluate(
        ([r]) => {
          const h = (globalThis as unknown as { harness: Harness }).harness
          const early: Message[] = [['first', 1], ['second', new Uint8Array([1, 2, 3])], ['third', { nested: [true, null] }, 'two args']]
          h.mount(r, { early })
        },
        [response] as const,
      )
      await eventually(() => run(page, (h) => h.record.readyAtEarlySend !== null), 'the early sends')
      expect(await run(page, (h) => h.record.readyAtEarlySend)).toBe(false)
      expect(await text(page, 'ready')).toBe('false')
      expect(await text(page, 'socket')).toBe('none') // no socket before ready
      gate.release()
      await eventually(async () => (await backendLog(response)).received.length >= 4, 'four messages at the backend')
      const log = await backendLog(response)
      expect(log.received).toEqual([
        { event: 'first', args: [{ json: 1 }] },
        { event: 'second', args: [{ binary: [1, 2, 3] }] },
        { event: 'third', args: [{ json: { nested: [true, null] } }, { json: 'two args' }] },
        { event: 'hello', args: [{ json: 'seed' }] },
      ])
      expect(log.clients).toBe(1)
      expect(await text(page, 'ready')).toBe('true')
    } finally {
      await gate.close()
    }
  })

  it('shows terminated and useReady() false once the server terminates the backend, and closes the socket and stream', async () => {
    const response = await connect()
    const page = await openPage()
    await mount(page, response)
    await eventually(() => run(page, (h) => h.connected()), 'the socket to connect')
    await jamsocket.terminate(response.backend_id)
    await shows(page, 'status', 'terminated')
    expect(await text(page, 'ready')).toBe('false')
    await shows(page, 'socket', 'none')
    expect(await run(page, (h) => h.record.readies)).toEqual([false, true, false])
    await eventually(() => counter.open(response.backend_id) === 0, 'the status stream to close')
  })

  it('keeps the socket while the backend terminates (its last messages arrive), without reconnecting, and closes it at terminated', async () => {
    const gate = await startGate()
    try {
      const response = await connect({ EXIT_GATE_URL: gate.url })
      const page = await openPage()
      await mount(page, response)
      // The socket stays open over its WebSocket: the proxy takes no new request to a terminating
      // backend (410), so a socket still long-polling would drop at its next poll after 'bye'.
      await eventually(async () => (await run(page, (h) => h.transport())) === 'websocket', 'the upgrade to WebSocket')
      expect(await run(page, (h) => [h.connected(), h.reconnects()])).toEqual([true, true])
      await jamsocket.terminate(response.backend_id)
      await shows(page, 'status', 'terminating')
      expect(await text(page, 'ready')).toBe('false')
      await eventually(() => run(page, (h) => h.record.pongs.some((p) => p.at(-1) === 'bye')), 'the backend’s last message')
      expect(await run(page, (h) => [h.connected(), h.reconnects()])).toEqual([true, false])
      gate.release()
      await shows(page, 'status', 'terminated')
      await shows(page, 'socket', 'none')
    } finally {
      await gate.close()
    }
  })

  it('a socket that only long-polls drops at its next poll once the backend terminates (the proxy takes no new request)', async () => {
    const gate = await startGate()
    try {
      const response = await connect({ EXIT_GATE_URL: gate.url })
      const page = await openPage()
      await mount(page, response, { socketOptions: { transports: ['polling'] } })
      await eventually(() => run(page, (h) => h.connected()), 'the socket to connect')
      // Terminate only while a poll waits at the backend: a poll sent after terminating gets 410 and
      // would never carry 'bye'.
      await eventually(async () => (await backendLog(response)).waitingPolls === 1, 'a poll waiting at the backend')
      await jamsocket.terminate(response.backend_id)
      // 'bye' answers the pending poll; the next poll is a new request, and the proxy answers it with 410.
      await eventually(() => run(page, (h) => h.record.pongs.some((p) => p.at(-1) === 'bye')), 'the backend’s last message')
      await eventually(async () => !(await run(page, (h) => h.connected())), 'the socket to drop')
      expect(await run(page, (h) => h.reconnects())).toBe(false)
      gate.release()
      await shows(page, 'status', 'terminated')
      await shows(page, 'socket', 'none')
    } finally {
      await gate.close()
    }
  })

  it('hydrates server HTML without a mismatch (useReady() false on both sides), then turns ready and connects', async () => {
    const response = await connect()
    await jamsocket.handle(response).waitUntilReady()
    const html = renderToString(tree({ ...response, status: 'ready' }, {}))
    expect(html).toContain('<p id="ready">false</p>')
    const page = await openPage()
    await page.evaluate(([r, h]) => (globalThis as unknown as { harness: Harness }).harness.hydrate(r, h), [{ ...response, status: 'ready' }, html] as const)
    await shows(page, 'ready', 'true')
    await eventually(() => run(page, (h) => h.connected()), 'the socket to connect')
    expect(page.problems).toEqual([])
  })

  it('a connectResponse for another backend closes the old stream and socket and opens new ones', async () => {
    const [first, second] = await Promise.all([connect(), connect()])
    const page = await openPage()
    await mount(page, first)
    await eventually(async () => (await backendLog(first)).clients === 1 && counter.open(first.backend_id) === 1, 'the first backend in use')
    await page.evaluate(([r]) => (globalThis as unknown as { harness: Harness }).harness.rerender(r), [second] as const)
    await eventually(async () => (await backendLog(second)).clients === 1 && counter.open(second.backend_id) === 1, 'the second backend in use')
    await eventually(async () => (await backendLog(first)).clients === 0 && counter.open(first.backend_id) === 0, 'the first backend let go')
  })

  it('socket.io works through the proxy: polling, then the WebSocket upgrade; and each transport alone', async () => {
    const response = await connect()
    const page = await openPage()
    await mount(page, response, { socketOptions: { auth: { secret: response.secret_token } } })
    await eventually(async () => (await run(page, (h) => h.transport())) === 'websocket', 'the upgrade to WebSocket')
    await run(page, (h) => h.send('ping', 'after upgrade'))
    await eventually(() => run(page, (h) => h.record.pongs.some((p) => p.at(-1) === 'after upgrade')), 'the pong over WebSocket')
    const [connection] = (await backendLog(response)).connections
    expect(connection).toEqual({ auth: { secret: response.secret_token }, transports: ['polling', 'websocket'] })

    for (const transport of ['polling', 'websocket']) {
      const other = await connect()
      await run(page, (h) => h.unmount())
      await mount(page, other, { socketOptions: { transports: [transport] } })
      await run(page, (h) => h.send('ping', 'alone'))
      await eventually(() => run(page, (h) => h.record.pongs.length > 0), `a pong over ${transport} alone`)
      expect((await backendLog(other)).connections.map((c) => c.transports)).toEqual([[transport]])
    }
  })

  it('useSend() keeps its identity and useEventListener calls the latest callback without re-subscribing', async () => {
    const response = await connect()
    const page = await openPage()
    await mount(page, response)
    await eventually(() => run(page, (h) => h.connected()), 'the socket to connect')
    for (let i = 0; i < 5; i++) await run(page, (h) => h.bump())
    const renders = await run(page, (h) => h.record.renders)
    expect(await run(page, (h) => h.record.sendFunctions.size)).toBe(1)
    expect(await run(page, (h) => h.listenerCount('pong'))).toBe(1)
    await fetch(`${response.url}emit?event=pong&arg=pushed`)
    await eventually(() => run(page, (h) => h.record.pongs.length > 0), 'the pushed event')
    expect(await run(page, (h) => h.record.pongs)).toEqual([[renders, 'pushed']])
  })
})

describe('SessionBackend (the @jamsocket/client surface) in Chromium', () => {
  it('follows a backend from start to terminated: isReady, onReady, onStatus, the promises, onTerminated, status()', async () => {
    const gate = await startGate()
    try {
      const response = await connect({ GATE_URL: gate.url })
      const page = await openPage()
      await page.evaluate(([r]) => (globalThis as unknown as { harness: Harness }).harness.follow(r), [response] as const)
      await eventually(() => counter.open(response.backend_id) === 1, 'the status stream (following starts in the constructor)')
      expect(await run(page, (h) => [h.compat!.seen.readyAtStart, h.compat!.backend.isReady(), h.compat!.backend.isTerminated()])).toEqual([false, false, false])
      expect(await run(page, (h) => [h.compat!.backend.url, h.compat!.backend.statusUrl])).toEqual([response.url, response.status_url])
      gate.release()
      await eventually(() => run(page, (h) => h.compat!.seen.readyPromise), 'onReadyPromise')
      expect(await run(page, (h) => [h.compat!.backend.isReady(), h.compat!.seen.readyCalls])).toEqual([true, 1])
      // onReady on a ready backend calls back at once, synchronously.
      expect(await run(page, (h) => { let called = false; h.compat!.backend.onReady(() => (called = true)); return called })).toBe(true)
      expect(await page.evaluate(() => (globalThis as unknown as { harness: Harness }).harness.compat!.backend.status().then((s) => s.status))).toBe('ready')

      await jamsocket.terminate(response.backend_id)
      await eventually(() => run(page, (h) => h.compat!.seen.terminatedPromise), 'onTerminatedPromise')
      const seen = await run(page, (h) => ({ ...h.compat!.seen, ready: h.compat!.backend.isReady(), terminated: h.compat!.backend.isTerminated() }))
      expect(seen).toMatchObject({ readyCalls: 1, terminatedCalls: 1, ready: false, terminated: true })
      // Each status once, in order, ending at terminated.
      expect(seen.statuses).toEqual([...new Set(seen.statuses)])
      expect(seen.statuses.slice(-1)).toEqual(['terminated'])
      expect(seen.statuses).toContain('ready')
      await eventually(() => counter.open(response.backend_id) === 0, 'the stream to close at terminated')
      expect(page.problems).toEqual([])
    } finally {
      await gate.close()
    }
  })

  it('destroy() closes the status stream and leaves the backend running', async () => {
    const response = await connect()
    const page = await openPage()
    await page.evaluate(([r]) => (globalThis as unknown as { harness: Harness }).harness.follow(r), [response] as const)
    await eventually(() => run(page, (h) => h.compat!.seen.readyPromise), 'ready')
    await run(page, (h) => h.compat!.backend.destroy())
    await eventually(() => counter.open(response.backend_id) === 0, 'the stream to close')
    const status = (await (await fetch(response.status_url)).json()) as { status: string }
    expect(status.status).toBe('ready')
  })
})
