/**
 * The dashboard at the API's root: `GET /` is the page, `GET /dashboard/events` the registry's
 * changes as server-sent events (a snapshot, then one `backend` event per status change or
 * connect). The page reads the existing log streams and terminate route for the rest.
 *
 * Protected like the token routes (the API's Host and Origin checks run first); on top of that
 * the page may not be framed (clickjacking) and runs only its own inline script and style.
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BackendState } from '../wire.js'
import { pageHtml, PAGE_SCRIPT, PAGE_STYLE } from './dashboard-page.js'
import type { Backend, Registry } from './registry.js'
import { sendError } from './respond.js'
import { EventStream } from './sse.js'

/** The path of the dashboard's event stream. */
const DASHBOARD_EVENTS_PATH = '/dashboard/events'

/** One backend as the dashboard shows it. */
export interface DashboardBackend {
  id: string
  key: string
  /** The image a Plane connect named (a label: the server's one command runs every backend), or null. */
  image: string | null
  /** The `user` of the latest connect, or null. */
  user: string | null
  /** Every status reached, with the server's times. */
  statuses: BackendState[]
}

/** What `GET /dashboard/events` sends. */
export type DashboardEvent =
  | { type: 'snapshot'; now: string; backends: DashboardBackend[] }
  | { type: 'backend'; backend: DashboardBackend }

/** Ended backends in a snapshot: the latest this many (the page shows fewer still). */
const SNAPSHOT_ENDED = 100

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`

let page: { body: Buffer; csp: string } | undefined

function thePage(): { body: Buffer; csp: string } {
  page ??= {
    body: Buffer.from(pageHtml(), 'utf8'),
    csp: [
      "default-src 'none'",
      `script-src ${sha256(PAGE_SCRIPT)}`,
      `style-src ${sha256(PAGE_STYLE)}`,
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
      "form-action 'none'",
    ].join('; '),
  }
  return page
}

function view(backend: Backend): DashboardBackend {
  return { id: backend.id, key: backend.key, image: backend.context.image ?? null, user: backend.lastUser ?? null, statuses: backend.history }
}

/** True for the paths the dashboard answers. */
export function isDashboardPath(path: string): boolean {
  return path === '/' || path === DASHBOARD_EVENTS_PATH
}

/** Answers `GET /` (the page) and `GET /dashboard/events` (the registry's changes). */
export function serveDashboard(req: IncomingMessage, res: ServerResponse, path: string, registry: Registry, keepAliveMs: number): void {
  const method = req.method ?? 'GET'
  if (method !== 'GET' && method !== 'HEAD') return sendError(res, 405, 'MethodNotAllowed', 'use GET')
  if (path === DASHBOARD_EVENTS_PATH) {
    if (method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.end()
      return
    }
    const stream = new EventStream(req, res, keepAliveMs, false)
    const send = (event: DashboardEvent) => stream.send(JSON.stringify(event))
    const all = registry.all()
    const ended = all.filter((b) => b.status === 'terminated')
    const dropped = new Set(ended.slice(0, Math.max(0, ended.length - SNAPSHOT_ENDED)))
    send({ type: 'snapshot', now: new Date().toISOString(), backends: all.filter((b) => !dropped.has(b)).map(view) })
    stream.onClose(registry.watch((backend) => send({ type: 'backend', backend: view(backend) })))
    return
  }
  const { body, csp } = thePage()
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'no-store',
    'content-security-policy': csp,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
  })
  res.end(method === 'HEAD' ? undefined : body)
}
