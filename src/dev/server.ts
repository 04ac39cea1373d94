/**
 * `startDevServer()`: the embedded local server — the v2 API on one port, the proxy on another,
 * backends as local processes. Listens on 127.0.0.1 by default (and on [::1] too when `localhost`
 * resolves there), so that `new Jamsocket({ dev: true, port })` reaches it unchanged.
 */
import { lookup } from 'node:dns/promises'
import { createServer, type IncomingMessage, Server } from 'node:http'
import type { Server as NetServer } from 'node:net'
import { networkInterfaces, hostname } from 'node:os'
import { createApiHandler, type PublicUrls } from './api.js'
import { type DevServerOptions, resolveDevOptions } from './options.js'
import { createProxy, createProxyServer } from './proxy.js'
import { Registry } from './registry.js'
import { bracket, HostCheck, unbracket } from './respond.js'
import { closeOnSignals } from './signals.js'

/** A running local server. */
export interface DevServer {
  /** The API base URL, e.g. `http://127.0.0.1:8080` (what `new Jamsocket({ dev: true, port })` talks to). */
  readonly apiUrl: string
  /** The dashboard: a live table and timeline of the backends, with their logs (`{apiUrl}/`, for a browser). */
  readonly dashboardUrl: string
  /** The proxy base URL; backends are at `{proxyUrl}/{token}/`. */
  readonly proxyUrl: string
  /**
   * The credential the API requires (`Authorization: Bearer <apiToken>`), or undefined when it
   * requires none (a loopback `host` and no `apiToken` option). Generated when `host` is not a
   * loopback address and no `apiToken` was given. A client reaches such a server with
   * `new Jamsocket({ account: '-', service: '-', token: apiToken, apiUrl })`.
   */
  readonly apiToken: string | undefined
  /** The API port (useful with `port: 0`). */
  readonly port: number
  /** The proxy port. */
  readonly proxyPort: number
  /**
   * Terminates every live backend (reason `external`; soft unless `hard`) and resolves once all have
   * terminated. The server keeps running (the CLI's `--watch` uses it).
   */
  terminateAll(options?: { hard?: boolean }): Promise<void>
  /**
   * Stops accepting connects, terminates every backend (SIGTERM, SIGKILL after the grace period),
   * waits until every process is gone, then closes both servers. Safe to call twice.
   */
  close(): Promise<void>
  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]'])

function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.once('error', onError)
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError)
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    if (server instanceof Server) server.closeAllConnections()
  })
}

async function localhostIsIpv6(): Promise<boolean> {
  try {
    const addresses = await lookup('localhost', { all: true })
    return addresses.some((a) => a.address === '::1')
  } catch {
    return false
  }
}

/**
 * Starts the local server. Resolves once both ports listen.
 *
 * @example
 * ```ts
 * const dev = await startDevServer({ command: ['node', 'backend.mjs'], port: 0, proxyPort: 0 })
 * const jamsocket = new Jamsocket({ dev: true, port: dev.port })
 * // …
 * await dev.close()
 * ```
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const resolved = resolveDevOptions(options)
  const { host } = resolved
  const registry = new Registry(resolved)
  // Backends run in their own process groups, so they would outlive a host process that exits
  // (process.exit, an uncaught exception) without close(): kill them as it goes.
  const killOnExit = () => registry.killAllNow()
  process.on('exit', killOnExit)
  const servers: NetServer[] = []
  const wildcard = WILDCARDS.has(host)
  try {
    const apiServer = createServer()
    const proxyLimits = { headTimeoutMs: resolved.proxyHeadTimeoutMs, maxConnections: resolved.proxyMaxConnections }
    const proxyServer = createProxyServer(proxyLimits)
    servers.push(apiServer, proxyServer)
    const port = await listen(apiServer, resolved.port, host)
    const proxyPort = await listen(proxyServer, resolved.proxyPort, host)

    // Which Host headers name this server: DNS rebinding protection for a server that spawns processes.
    const names = new Set(['localhost', '127.0.0.1', '::1', unbracket(host), ...resolved.allowedHosts])
    if (wildcard) {
      names.add(hostname())
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address)
    }
    const displayHost = wildcard ? 'localhost' : bracket(host)
    const apiUrl = `http://${displayHost}:${port}`
    const proxyUrl = `http://${displayHost}:${proxyPort}`
    // On a wildcard address the URLs handed out follow the Host the caller used (it passed the check).
    const hostOf = (req: IncomingMessage) => (req.headers.host ?? '').replace(/:\d+$/, '')
    const urls: PublicUrls = wildcard
      ? { api: (req) => `http://${hostOf(req)}:${port}`, proxy: (req) => `http://${hostOf(req)}:${proxyPort}` }
      : { api: () => apiUrl, proxy: () => proxyUrl }

    const apiHandler = createApiHandler(registry, resolved, new HostCheck(names, port), urls)
    const proxy = createProxy(registry, new HostCheck(names, proxyPort), {
      holdMs: resolved.holdMs,
      connections: resolved.proxyMaxConnections,
      onError: (text) => registry.message('warn', text),
    })
    const wire = (api: Server, prx: Server) => {
      api.on('request', apiHandler)
      api.on('clientError', (_error, socket) => socket.destroy())
      proxy.attach(prx)
    }
    wire(apiServer, proxyServer)

    // `localhost` may resolve to ::1 first (newer Node / other hosts files): listen there too.
    if (host === '127.0.0.1' && (await localhostIsIpv6())) {
      const api6 = createServer()
      const proxy6 = createProxyServer(proxyLimits)
      try {
        await listen(api6, port, '::1')
        await listen(proxy6, proxyPort, '::1')
        servers.push(api6, proxy6)
        wire(api6, proxy6)
      } catch {
        api6.close()
        proxy6.close()
      }
    }

    let closing: Promise<void> | undefined
    let stopSignals = () => {}
    const close = () => {
      closing ??= (async () => {
        await registry.close()
        stopSignals()
        process.off('exit', killOnExit)
        const closed = Promise.all(servers.map(closeServer))
        proxy.close() // after close(): no new connections come in
        await closed
      })()
      return closing
    }
    if (resolved.handleSignals) stopSignals = closeOnSignals({ close, hurry: () => void registry.terminateAll(true) })
    return {
      apiUrl,
      dashboardUrl: `${apiUrl}/`,
      proxyUrl,
      apiToken: resolved.apiToken,
      port,
      proxyPort,
      terminateAll: (opts) => registry.terminateAll(opts?.hard ?? false),
      close,
      [Symbol.asyncDispose]: close,
    }
  } catch (error) {
    await registry.close()
    process.off('exit', killOnExit)
    await Promise.all(servers.filter((s) => s.listening).map(closeServer))
    throw error
  }
}
