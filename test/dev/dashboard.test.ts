/**
 * The dashboard at the API's root, in headless Chromium against real backends: rows appear and
 * change status live, the timeline has one bar per phase reached, the page terminates a backend,
 * and a page on another origin can neither read nor drive it. Saves a screenshot of the page.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Jamsocket, type BackendHandle } from '../../src/index.js'
import type { BackendInfo, BackendStatus } from '../../src/wire.js'
import { launchChromium } from '../browser/harness.js'
import { startServer, type TestServer } from './helpers.js'

const SCREENSHOT_DIR = fileURLToPath(new URL('../../.work/', import.meta.url))
const DOCS_SCREENSHOT = fileURLToPath(new URL('../../docs/dashboard.png', import.meta.url))

let browser: Browser
beforeAll(async () => {
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
})

let pages: Page[] = []
let handles: BackendHandle[] = []
let others: Server[] = []
afterEach(async () => {
  for (const handle of handles.splice(0)) handle.close()
  await Promise.all(pages.splice(0).map((p) => p.context().close()))
  await Promise.all(others.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
})

async function open(url: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1180, height: 820 }, colorScheme: 'light' })
  const page = await context.newPage()
  pages.push(page)
  await page.goto(url)
  return page
}

async function connect(server: TestServer, key: string, user?: string, env?: Record<string, string>): Promise<BackendHandle> {
  const jamsocket = new Jamsocket({ dev: true, port: server.port })
  const handle = await jamsocket.connect({ key, ...(user ? { user } : {}), ...(env ? { spawn: { executable: { env } } } : {}) })
  handles.push(handle)
  return handle
}

const row = (id: string) => `#backends tr[data-id="${id}"]`

async function info(server: TestServer, id: string): Promise<BackendInfo> {
  return (await (await fetch(`${server.apiUrl}/v2/backend/${id}`)).json()) as BackendInfo
}

describe('dashboard (headless Chromium, real backends)', () => {
  it('rows appear and change status live, with key, user and ready in; the timeline has one bar per phase reached', async () => {
    const server = await startServer('listen')
    // Works offline: everything the page loads comes from the server itself (no CDN).
    const requested: string[] = []
    const context = await browser.newContext({ viewport: { width: 1180, height: 820 } })
    const page = await context.newPage()
    pages.push(page)
    page.on('request', (r) => requested.push(r.url()))
    await page.goto(server.dashboardUrl)
    await page.waitForSelector('#conn.live')
    // Record every status each row shows, as the page changes it (no reload).
    await page.evaluate(() => {
      const { window, document, MutationObserver } = (globalThis as any)
      const seen: Record<string, string[]> = (window.seen = {})
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll('#backends tbody tr')) {
          const list = (seen[tr.dataset.id] ??= [])
          if (list[list.length - 1] !== tr.dataset.status) list.push(tr.dataset.status)
        }
      }).observe(document.querySelector('#backends tbody'), { subtree: true, attributes: true, childList: true })
    })
    // A slow start, so that the row is seen before ready.
    const handle = await connect(server, 'doc-live', 'ada', { FIXTURE_DELAY_MS: '600' })
    await page.waitForSelector(row(handle.backend_id))
    await handle.waitUntilReady()
    await page.waitForSelector(`${row(handle.backend_id)}[data-status="ready"]`)
    const cells = await page.$$eval(`${row(handle.backend_id)} td`, (tds) => tds.map((td) => td.textContent))
    expect(cells.slice(0, 4)).toEqual([handle.backend_id, 'doc-live', 'ada', 'ready'])
    expect(cells[5]).toMatch(/^\d+(\.\d+)? (ms|s)$/)
    const seen = (await page.evaluate((id) => (globalThis as any).window.seen[id], handle.backend_id)) as string[]
    expect(seen.length).toBeGreaterThan(1)
    expect(seen.at(-1)).toBe('ready')

    // One bar per status reached but `terminated` (an instant), in order, in the same colours as the table.
    const bars = () => page.$$eval(`[data-timeline="${handle.backend_id}"] .bar`, (els) => els.map((e) => (e as unknown as { dataset: { status: string } }).dataset.status))
    expect(await bars()).toEqual((await info(server, handle.backend_id)).statuses.map((s) => s.status))

    // A connect by another user shows that user.
    await connect(server, 'doc-live', 'grace')
    await page.waitForSelector(`${row(handle.backend_id)} td.user:text-is("grace")`)

    const ended = new Promise((resolve) => handle.once('terminated', resolve))
    await new Jamsocket({ dev: true, port: server.port }).terminate(handle.backend_id)
    await ended
    await page.waitForSelector(`${row(handle.backend_id)}[data-status="terminated"]`)
    const statuses = (await info(server, handle.backend_id)).statuses.map((s) => s.status)
    expect(await bars()).toEqual(statuses.filter((s) => s !== 'terminated'))
    expect(await bars()).toHaveLength(handle.timings.phases.length)
    expect(requested.length).toBeGreaterThan(1)
    expect(requested.filter((url) => !url.startsWith(`${server.apiUrl}/`))).toEqual([])
  })

  it("terminate from the page ends the backend, and the log panel shows the backend's output", async () => {
    const server = await startServer('listen')
    const handle = await connect(server, 'doc-terminate', 'ada')
    await handle.waitUntilReady()
    const page = await open(server.dashboardUrl)
    await page.click(row(handle.backend_id))
    await page.waitForSelector(`#log:has-text("listening on")`)
    const ended = new Promise<BackendStatus>((resolve) => handle.once('terminated', (state) => resolve(state.termination_reason as BackendStatus)))
    await page.click(`${row(handle.backend_id)} button.terminate`)
    expect(await ended).toBe('external')
    await page.waitForSelector(`${row(handle.backend_id)}[data-status="terminated"]`)
    await page.waitForSelector(`#log:has-text("got SIGTERM")`)
    expect(await page.isDisabled(`${row(handle.backend_id)} button.terminate`)).toBe(true)
  })

  it('a page on another origin cannot drive it: no terminate, no event stream, no framing', async () => {
    const server = await startServer('listen')
    const handle = await connect(server, 'doc-cross', 'ada')
    await handle.waitUntilReady()
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>elsewhere</title><body></body>')
    })
    others.push(evil)
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
    const page = await open(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`)
    const api = server.apiUrl
    const outcome = await page.evaluate(
      async ({ api, id }) => {
        // The page's globals (this test is typed for Node, without the DOM lib).
        const { document, EventSource } = globalThis as any
        // A "simple" cross-origin POST needs no preflight: the server must refuse it itself.
        await fetch(`${api}/v2/backend/${id}/terminate`, { method: 'POST', mode: 'no-cors', body: '{"hard":true}' }).catch(() => undefined)
        const read = await fetch(`${api}/dashboard/events`).then(
          () => 'read',
          () => 'refused',
        )
        const events = await new Promise<string>((resolve) => {
          const source = new EventSource(`${api}/dashboard/events`)
          source.onmessage = () => (source.close(), resolve('message'))
          source.onerror = () => (source.close(), resolve('error'))
        })
        const framed = await new Promise<string>((resolve) => {
          const frame = document.createElement('iframe')
          frame.src = `${api}/`
          frame.onload = () => resolve('loaded')
          document.body.appendChild(frame)
        })
        return { read, events, framed }
      },
      { api, id: handle.backend_id },
    )
    expect(outcome).toEqual({ read: 'refused', events: 'error', framed: 'loaded' })
    // The frame loaded an error page, not the dashboard.
    const frame = page.frames().find((f) => f !== page.mainFrame())!
    expect(frame.url()).not.toBe(`${api}/`)
    expect(await frame.$('#backends')).toBeNull()
    // Still running: the cross-origin terminate was refused.
    expect(((await (await fetch(`${api}/v2/backend/${handle.backend_id}/status`)).json()) as { status: string }).status).toBe('ready')
  })

  it('saves a screenshot of the dashboard with a few backends', async () => {
    const server = await startServer('listen')
    const fast = await connect(server, 'doc-42', 'ada')
    const slow = await connect(server, 'whiteboard-7', 'grace', { FIXTURE_DELAY_MS: '2500' })
    const other = await connect(server, 'room-lobby', 'linus')
    const gone = await connect(server, 'doc-17', 'ada')
    await Promise.all([fast, slow, other, gone].map((h) => h.waitUntilReady()))
    const ended = new Promise((resolve) => gone.once('terminated', resolve))
    await new Jamsocket({ dev: true, port: server.port }).terminate(gone.backend_id)
    await ended
    const page = await open(server.dashboardUrl)
    await page.waitForSelector(`${row(gone.backend_id)}[data-status="terminated"]`)
    await page.click(row(fast.backend_id))
    await page.waitForSelector(`#log:has-text("listening on")`)
    await page.waitForSelector(`${row(slow.backend_id)}[data-status="ready"]`)
    mkdirSync(SCREENSHOT_DIR, { recursive: true })
    const path = `${SCREENSHOT_DIR}dashboard.png`
    await page.screenshot({ path, fullPage: true })
    if (process.env.UPDATE_DOCS_SCREENSHOT) {
      mkdirSync(dirname(DOCS_SCREENSHOT), { recursive: true })
      copyFileSync(path, DOCS_SCREENSHOT)
    }
    expect(existsSync(path)).toBe(true)
  })
})

describe('dashboard routes (HTTP)', () => {
  /** A GET with exactly these headers (fetch would not let a test set Host). */
  function get(server: TestServer, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
        res.resume()
        resolve({ status: res.statusCode!, headers: res.headers })
        res.destroy()
      })
      req.on('error', reject)
      req.end()
    })
  }

  it('answers the page and its event stream only to its own Host and origin', async () => {
    const server = await startServer('listen')
    const host = `127.0.0.1:${server.port}`
    const page = await get(server, '/', { host })
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect((await get(server, '/dashboard/events', { host, origin: `http://${host}` })).status).toBe(200)
    for (const path of ['/', '/dashboard/events']) {
      expect((await get(server, path, { host: 'evil.example' })).status).toBe(403)
      expect((await get(server, path, { host, origin: 'http://evil.example' })).status).toBe(403)
    }
  })

  it('a server that requires an API token refuses the dashboard without it, like its other token routes', async () => {
    const server = await startServer('listen', { apiToken: 'a-token-of-enough-length' })
    const host = `127.0.0.1:${server.port}`
    for (const path of ['/', '/dashboard/events']) {
      expect((await get(server, path, { host })).status).toBe(401)
      expect((await get(server, path, { host, authorization: 'Bearer a-token-of-enough-length' })).status).toBe(200)
    }
  })

  it('GET /v2/backend/{id} gives the history: every status with its time, as handle.history has it', async () => {
    const server = await startServer('listen')
    const handle = await connect(server, 'doc-info')
    await handle.waitUntilReady()
    const ended = new Promise((resolve) => handle.once('terminated', resolve))
    await new Jamsocket({ dev: true, port: server.port }).terminate(handle.backend_id)
    await ended
    const statuses = (await info(server, handle.backend_id)).statuses
    expect(statuses.map((s) => [s.status, s.time])).toEqual(handle.history.map((s) => [s.status, s.time]))
    expect(statuses.map((s) => s.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'terminated'])
  })
})

// Regenerate docs/dashboard.png: UPDATE_DOCS_SCREENSHOT=1 npx vitest run test/dev/dashboard.test.ts

