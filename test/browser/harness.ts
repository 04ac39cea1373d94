/**
 * Helpers of the browser tests: headless Chromium (Debian's, driven by playwright-core), a page
 * bundled with esbuild and served from 127.0.0.1, a relay in front of the local server's API that
 * counts open status streams, a gate that holds a backend before it listens, and a bounded
 * wait-for-condition loop (never a fixed sleep).
 */
import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { eventually as poll } from '../helpers/eventually.js'

/** Where Debian installs Chromium (`.ci/run` installs it when missing); CHROMIUM_PATH overrides. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Headless Chromium, or a clear error saying how to get one when it is not installed. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`)
  return chromium.launch({ executablePath: CHROMIUM, headless: true })
}

/** `page`, with every console warning and error and every uncaught page error kept in `problems`. */
export function watchProblems(page: Page): Page & { problems: string[] } {
  const watched = Object.assign(page, { problems: [] as string[] })
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') watched.problems.push(message.text())
  })
  page.on('pageerror', (error) => watched.problems.push(String(error)))
  return watched
}

/** The text of the element with this id. */
export const text = (page: Page, id: string) => page.locator(`#${id}`).textContent()

/** Waits until the element with this id shows `value`. */
export async function shows(page: Page, id: string, value: string): Promise<void> {
  await eventually(async () => (await text(page, id)) === value, `#${id} to show ${value}`)
}

/** {@link poll} every 20 ms: each check evaluates in the page. */
export function eventually<T>(check: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  return poll(check, what, timeoutMs, 20)
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/**
 * Bundles a page script for the browser, with React's development build (StrictMode's double
 * effects), minified so that each new page parses it quickly.
 */
export async function bundlePage(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    jsx: 'automatic',
    minify: true,
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.text
}

export interface PageServer {
  url: string
  close(): Promise<void>
}

/** Serves `/` (a page with `<div id="root">` loading `/page.js`) and `/page.js`. */
export async function servePage(script: string): Promise<PageServer> {
  const server = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      return res.end(script)
    }
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end('<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/page.js"></script>')
  })
  const url = await listen(server)
  return { url, close: () => close(server) }
}

/**
 * A relay in front of the local server's API that counts the status streams open through it, per
 * backend id: `open(id)` is the number whose connection is still open, `opened(id)` how many were
 * ever requested. A browser's `status_url` is pointed here with {@link relayed}.
 */
export class StreamCounter {
  readonly #open = new Map<string, number>()
  readonly #opened = new Map<string, number>()
  #server: Server | undefined
  url = ''

  constructor(readonly apiUrl: string) {}

  async start(): Promise<this> {
    this.#server = createServer((req, res) => this.#relay(req, res))
    this.url = await listen(this.#server)
    return this
  }

  open(id: string): number {
    return this.#open.get(id) ?? 0
  }

  opened(id: string): number {
    return this.#opened.get(id) ?? 0
  }

  close(): Promise<void> {
    return this.#server ? close(this.#server) : Promise.resolve()
  }

  #relay(req: IncomingMessage, res: ServerResponse): void {
    const stream = /^\/v2\/backend\/([^/]+)\/status\/stream/.exec(req.url ?? '')
    const id = stream ? decodeURIComponent(stream[1]!) : undefined
    if (id !== undefined) {
      this.#opened.set(id, this.opened(id) + 1)
      this.#open.set(id, this.open(id) + 1)
      res.once('close', () => this.#open.set(id, this.open(id) - 1))
    }
    const target = new URL(req.url ?? '/', this.apiUrl)
    const upstream = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    res.once('close', () => upstream.destroy())
    req.pipe(upstream)
  }
}

/** A connect response whose `status_url` goes through `counter`. */
export function relayed<T extends { status_url: string }>(response: T, counter: StreamCounter): T {
  return { ...response, status_url: response.status_url.replace(counter.apiUrl, counter.url) }
}

/** Holds every request until {@link release}: a backend given GATE_URL waits for it before listening. `close()` releases first. */
export async function startGate(): Promise<{ url: string; release(): void; close(): Promise<void> }> {
  const waiting: ServerResponse[] = []
  let released = false
  const server = createServer((_req, res) => {
    if (released) res.end('go')
    else waiting.push(res)
  })
  const url = await listen(server)
  const release = () => {
    released = true
    for (const res of waiting.splice(0)) res.end('go')
  }
  return {
    url,
    release,
    close: () => {
      release()
      return close(server)
    },
  }
}
