/**
 * The server's event streams, framed as Plane frames them: `data:{json}` + `id:{status}`, no
 * `event:`/`retry:`, a `:` comment after `keepAliveMs` of silence. The status stream replays the
 * history (after `Last-Event-ID`), then follows live and ends after `terminated`; the log stream
 * replays the buffered output, then follows, and ends once the backend has terminated.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isBackendStatus, statusRank, type BackendState } from '../wire.js'
import type { Backend, BackendLogLine } from './registry.js'
import { CORS_HEADERS } from './respond.js'

/**
 * Bytes a stream may have written but not yet sent before its reader counts as fallen behind and is
 * disconnected: a reader that stops reading must not make the server buffer a backend's output.
 */
const MAX_BUFFERED_BYTES = 1024 * 1024

/**
 * An open `text/event-stream` response with its keep-alive timer. `spaced` writes `data: ` and
 * `id: ` with a space after the colon, as Plane 0.5 (axum 0.7) does on its own routes.
 */
export class EventStream {
  readonly #res: ServerResponse
  readonly #timer: NodeJS.Timeout
  readonly #sep: string
  #closed = false
  #onClose: Array<() => void> = []

  constructor(req: IncomingMessage, res: ServerResponse, keepAliveMs: number, cors: boolean, spaced = false) {
    this.#res = res
    this.#sep = spaced ? ': ' : ':'
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...(cors ? CORS_HEADERS : {}),
    })
    res.flushHeaders()
    this.#timer = setInterval(() => this.#write(':\n\n'), keepAliveMs)
    const onGone = () => this.close()
    req.on('close', onGone)
    res.on('close', onGone)
    res.on('error', onGone)
  }

  /** Runs `fn` when the stream ends, whoever ends it. */
  onClose(fn: () => void): void {
    if (this.#closed) fn()
    else this.#onClose.push(fn)
  }

  /** Writes one event. */
  send(data: string, id?: string): void {
    const sep = this.#sep
    this.#write(id === undefined ? `data${sep}${data}\n\n` : `data${sep}${data}\nid${sep}${id}\n\n`)
    this.#timer.refresh() // the keep-alive counts silence, not time
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    if (!this.#res.writableEnded && !this.#res.destroyed) this.#res.end()
    for (const fn of this.#onClose.splice(0)) fn()
  }

  #write(text: string): void {
    if (this.#closed || this.#res.writableEnded) return
    this.#res.write(text)
    if (this.#res.writableLength > MAX_BUFFERED_BYTES) {
      // Fallen behind: drop the reader (and what was queued for it) rather than buffer without bound.
      this.#res.destroy()
      this.close()
    }
  }
}

/** The rank after which a resuming client wants events: from `Last-Event-ID` (a status), else 0. */
function resumeRank(req: IncomingMessage): number {
  const id = req.headers['last-event-id']
  const value = (Array.isArray(id) ? id[0] : id)?.trim()
  return isBackendStatus(value) ? statusRank(value) : 0
}

/**
 * Sends `backend`'s statuses after the client's `Last-Event-ID` (each once, in rank order, as
 * `encode` writes it, with the status as its id), then follows live ones. With `endAtTerminated`
 * the stream ends after `terminated`; without (Plane's routes), only the client ends it.
 */
export function followStatus(stream: EventStream, req: IncomingMessage, backend: Backend, encode: (state: BackendState) => string, endAtTerminated: boolean): void {
  let sent = resumeRank(req)
  const send = (state: BackendState) => {
    const rank = statusRank(state.status)
    if (rank <= sent) return
    sent = rank
    stream.send(encode(state), state.status)
    if (endAtTerminated && state.status === 'terminated') stream.close()
  }
  for (const state of backend.history) send(state)
  if (endAtTerminated && backend.status === 'terminated') {
    stream.close()
    return
  }
  stream.onClose(backend.onStatus(send))
}

/** `GET /v2/backend/{id}/status/stream`. */
export function streamStatus(req: IncomingMessage, res: ServerResponse, backend: Backend, keepAliveMs: number): void {
  followStatus(new EventStream(req, res, keepAliveMs, true), req, backend, (state) => JSON.stringify(state), true)
}

/** `GET /v2/backend/{id}/logs/stream`: one event per output line. */
export function streamLogs(req: IncomingMessage, res: ServerResponse, backend: Backend, keepAliveMs: number): void {
  const stream = new EventStream(req, res, keepAliveMs, false)
  const send = (line: BackendLogLine) => stream.send(line.text.replace(/[\r\n]/g, ' '))
  for (const line of backend.logs) send(line)
  if (backend.status === 'terminated') {
    stream.close()
    return
  }
  stream.onClose(backend.onLog(send))
  // Output is drained before `terminated` is applied, so nothing is lost by ending here.
  stream.onClose(
    backend.onStatus((state) => {
      if (state.status === 'terminated') stream.close()
    }),
  )
}
