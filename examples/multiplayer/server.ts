/**
 * The multiplayer example's app server: serves the page (bundled with esbuild at start) and
 * `GET /connect?doc=…&user=…` → `jamsocket.connect({ key: doc, user })` → the ConnectResponse.
 * Backends run under the embedded local server, one process per document (backend.mjs).
 * Run with `npm run example:multiplayer` and open the printed URL in two windows.
 */
import { build } from 'esbuild'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { startDevServer, type DevServer } from '../../src/dev/index.js' // in your app: 'session-backends/dev'
import { Jamsocket } from '../../src/index.js' // in your app: 'session-backends'

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

/** A running example. */
export interface Example {
  /** The page's URL. */
  url: string
  /** The embedded local server. */
  dev: DevServer
  /** Stops the app server and the local server (every backend with it). */
  close(): Promise<void>
}

/** A document name as a key: short, and nothing a URL or a log would mangle. */
const DOC = /^[\w-]{1,64}$/

const HTML = `<!doctype html>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<style>body { font: 16px system-ui; margin: 2rem } button { font: inherit }</style>
<div id="root"></div>
<script type="module" src="/page.js"></script>
`

/**
 * Starts the local server, bundles the page and serves the app on `port` (0 = any free port). Each
 * document's backend saves its state under `dataDir` when it ends, and the next one starts from it.
 */
export async function startExample({ port = 0, dataDir = '.dev-data', log = (_line: string) => {} } = {}): Promise<Example> {
  const bundled = await build({
    entryPoints: [here('./page.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    write: false,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  })
  const script = bundled.outputFiles[0]!.text

  const dev = await startDevServer({
    // The backend imports session-backends/backend from source, hence tsx.
    command: [process.execPath, '--import', 'tsx', here('./backend.mjs')],
    port: 0,
    proxyPort: 0,
    dataDir,
    onEvent: (event) => {
      if (event.type === 'log') log(`[${event.line.backendId.slice(0, 6)}] ${event.line.text}`)
    },
  })
  const jamsocket = new Jamsocket({ dev: true, port: dev.port })
  /** Backends this server connected to: the page may end only those. */
  const ours = new Set<string>()

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://app')
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
      res.end(body)
    }
    try {
      if (url.pathname === '/connect') {
        const doc = url.searchParams.get('doc') ?? ''
        const user = url.searchParams.get('user') ?? ''
        if (!DOC.test(doc) || !DOC.test(user)) return send(400, 'text/plain', 'doc and user: 1 to 64 letters, digits, - or _\n')
        // mount: a data directory per document, where its backend saves the state when it ends.
        const backend = await jamsocket.connect({ key: doc, user, spawn: { executable: { mount: true } } })
        ours.add(backend.backend_id)
        log(`connect ${doc} for ${user}: backend ${backend.backend_id} (${backend.spawned ? 'spawned' : 'running'})`)
        return send(200, 'application/json', JSON.stringify(backend)) // the plain ConnectResponse
      }
      if (url.pathname === '/end' && req.method === 'POST') {
        const id = url.searchParams.get('backend') ?? ''
        if (!ours.has(id)) return send(404, 'text/plain', 'unknown backend\n')
        await jamsocket.terminate(id)
        return send(200, 'text/plain', 'terminating\n')
      }
      if (url.pathname === '/page.js') return send(200, 'text/javascript', script)
      if (url.pathname === '/') return send(200, 'text/html', HTML)
      if (url.pathname === '/favicon.ico') return send(204, 'image/x-icon', '')
      send(404, 'text/plain', 'not found\n')
    } catch (error) {
      log(`${req.url}: ${String(error)}`)
      send(502, 'text/plain', 'the session backend service failed\n')
    }
  })
  try {
    await listen(server, port)
  } catch (error) {
    await dev.close()
    throw error
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  return {
    url,
    dev,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await dev.close()
    },
  }
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000)
  const example = await startExample({ port, log: (line) => console.log(line) }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EADDRINUSE') throw error
    console.log(`port ${port} is taken: using a free one`)
    return startExample({ port: 0, log: (line) => console.log(line) })
  })
  console.log(`\nOpen ${example.url}?doc=demo&user=ada and ${example.url}?doc=demo&user=bob (Ctrl-C stops everything)\n`)
  let closing = false
  const stop = () => {
    if (closing) return
    closing = true
    void example.close().then(() => process.exit(0))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
