/**
 * The multiplayer example (examples/multiplayer) in headless Chromium: its app server, the
 * embedded local server and proxy, a socket.io backend process per document, and two pages.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { io } from 'socket.io-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startExample, type Example } from '../../examples/multiplayer/server.js'
import type { ConnectResponse } from '../../src/wire.js'
import { launchChromium, shows, watchProblems } from './harness.js'

let example: Example
let browser: Browser
let dataDir: string

beforeAll(async () => {
  // Documents save their state here when their backend ends: a fresh directory per run.
  dataDir = await mkdtemp(join(tmpdir(), 'multiplayer-'))
  ;[example, browser] = await Promise.all([startExample({ dataDir }), launchChromium()])
})

afterAll(async () => {
  await browser?.close()
  await example?.close()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

async function open(doc: string, user: string): Promise<Page & { problems: string[] }> {
  const page = watchProblems(await browser.newPage())
  await page.goto(`${example.url}?doc=${doc}&user=${user}`)
  return page
}

describe('the multiplayer example', () => {
  it('two pages on one document see each other and each other’s changes, through the local server and proxy', async () => {
    const ada = await open('shared', 'ada')
    const bob = await open('shared', 'bob')
    await shows(ada, 'status', 'ready')
    await shows(bob, 'status', 'ready')
    await shows(ada, 'people', 'ada, bob')
    await shows(bob, 'people', 'ada, bob')
    await ada.click('#increment')
    await shows(bob, 'count', '1')
    await bob.click('#increment')
    await bob.click('#increment')
    await shows(ada, 'count', '3')
    await bob.close()
    await shows(ada, 'people', 'ada')
    expect(ada.problems).toEqual([])
    await ada.close()
  })

  it('a page shows terminated when its backend ends, and "Start a new session" connects a new one that starts from the saved state', async () => {
    const page = await open('ending', 'cy')
    await shows(page, 'status', 'ready')
    await page.click('#increment')
    await shows(page, 'count', '1')
    await page.click('#end')
    await shows(page, 'status', 'terminated')
    expect(await page.locator('#increment').isDisabled()).toBe(true)
    await page.click('#restart')
    await shows(page, 'status', 'ready')
    await shows(page, 'count', '1') // a new backend: the old one saved the count on SIGTERM, this one read it
    await shows(page, 'people', 'cy')
    await page.click('#increment')
    await shows(page, 'count', '2')
    expect(page.problems).toEqual([])
    await page.close()
  })

  it('the backend takes a socket only with the secret_token of a connect response in its handshake (socketIdentity)', async () => {
    const response = (await (await fetch(`${example.url}connect?doc=guarded&user=dee`)).json()) as ConnectResponse
    const { origin, pathname } = new URL(response.url)
    const sockets: ReturnType<typeof io>[] = []
    const attempt = (auth: Record<string, unknown>) =>
      new Promise<string>((resolve) => {
        const socket = io(origin, { path: `${pathname}socket.io/`, auth, forceNew: true, reconnection: false })
        sockets.push(socket)
        socket.on('connect', () => resolve('connected'))
        socket.on('connect_error', (error) => resolve(error.message))
      })
    try {
      expect(await attempt({})).toBe('the secret does not match x-verified-secret')
      expect(await attempt({ secret_token: 'guess' })).toBe('the secret does not match x-verified-secret')
      expect(await attempt({ secret_token: response.secret_token })).toBe('connected')
    } finally {
      for (const socket of sockets) socket.disconnect()
    }
  })
})
