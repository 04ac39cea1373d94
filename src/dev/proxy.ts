/**
 * The proxy (`{proxyUrl}/{token}/…`): finds the backend by the token in the first path segment,
 * strips it, replaces any client `x-verified-*` headers with the server's, holds requests until the
 * backend is ready, passes WebSocket upgrades through as raw sockets, and counts traffic as activity
 * for the idle sweep.
 *
 * Lean on purpose, because it sits on every request a backend gets: a plain TCP server that parses
 * only heads (see http1.ts) and passes bodies through as the bytes they are, one upstream socket per
 * client connection, and the rewritten head written together with the first body bytes in one write.
 * Loopback writes are the expensive part on a sandboxed network stack, so every hop does one.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { BodyFramer, bodyFraming, FramingError, HeadError, hasToken, headEnd, parseHead, responseHasBody } from './http1.js'
import type { Backend, Grant, Registry } from './registry.js'
import { errorBody, type HostCheck } from './respond.js'

/** What the proxy needs besides the registry. */
export interface ProxyOptions {
  holdMs: number
  onError?: ((text: string) => void) | undefined
}

/** Request and response heads larger than this are refused (431 / 502), as node:http's default. */
const MAX_HEAD = 16 * 1024
/** A client connection with no request for this long is closed (a little after what responses announce). */
const IDLE_MS = 65_000
const KEEP_ALIVE = 'keep-alive: timeout=60\r\n'
/** Pipelined requests buffered while one is in flight, before the client is paused. */
const PIPELINE_BYTES = 64 * 1024

const CORS_RESPONSE = 'Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: *\r\nAccess-Control-Allow-Headers: *, Authorization\r\n'

/** Splits `/{token}/rest?q` into the token and the upstream path (`/rest?q`, `/` when empty). */
function splitToken(url: string): [token: string, path: string] {
  let end = 1
  const n = url.length
  while (end < n) {
    const c = url.charCodeAt(end)
    if (c === 47 /* / */ || c === 63 /* ? */) break
    end++
  }
  const token = url.slice(1, end)
  if (end === n) return [token, '/']
  return [token, url.charCodeAt(end) === 47 ? url.slice(end) : `/${url.slice(end)}`]
}

// A header value the server adds, made safe to write as latin1: no control characters (header
// injection through a user name), and non-ASCII text as its UTF-8 bytes (as Plane sends it).
function headerValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\0-\x08\n-\x1f\x7f]/g, '')
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(clean) ? Buffer.from(clean, 'utf8').toString('latin1') : clean
}

// The identity headers of a grant, built once per grant.
const identities = new WeakMap<Grant, string>()
function identity(grant: Grant): string {
  let text = identities.get(grant)
  if (text === undefined) {
    text =
      (grant.user !== undefined ? `x-verified-username: ${headerValue(grant.user)}\r\n` : '') +
      `x-verified-user-data: ${headerValue(grant.userData)}\r\nx-verified-backend: ${grant.backend.id}\r\n` +
      `x-verified-secret: ${grant.backend.secretToken}\r\n`
    identities.set(grant, text)
  }
  return text
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  410: 'Gone',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
}

/**
 * A complete error response in the hosted API's shape (as `sendError` writes it), with CORS headers
 * as Plane sends them on its own errors: a page on another origin can then read a 410 and reconnect.
 */
function errorResponse(status: number, code: string, message: string, close: boolean): string {
  const body = JSON.stringify(errorBody(status, code, message))
  return (
    `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `cache-control: no-store\r\n${CORS_RESPONSE}${close ? 'connection: close\r\n' : ''}\r\n${body}`
  )
}

/** Below this, body bytes that came with a head are sent as latin1 text with it: one write, no Buffer made. */
const JOIN_AS_TEXT = 16 * 1024

/**
 * A head (latin1 text, ending in its blank line) and the body bytes that came with it, as one chunk
 * for one write (written with the 'latin1' encoding, which maps each char to its byte).
 */
function joinHead(head: string, body: Buffer | undefined): Buffer | string {
  if (body === undefined || body.length === 0) return head
  if (body.length <= JOIN_AS_TEXT) return head + body.toString('latin1')
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

/**
 * Passes `from`'s bytes to `to` as they come, pausing `from` while `to` is full, and ends `to` when
 * `from` ends. What `pipe()` does, minus the stream plumbing on every chunk: a tunnel's messages are
 * small, and each one crosses here twice.
 */
function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause()
  })
  to.on('drain', () => from.resume())
  from.on('end', () => to.end())
}

/** One request in flight on a client connection. */
interface Exchange {
  grant: Grant
  method: string
  /** The upstream request line and headers, without the final CRLF. */
  head: string
  upgrade: boolean
  /** Close the client connection once the response is complete. */
  closeAfter: boolean
  /** Counted in the registry's activity (begin called, end not yet). */
  counted: boolean
  /** Bytes of the response (interim or final) already written to the client. */
  answered: boolean
  /** The request body has been passed on completely. */
  requestDone: boolean
  /** Cancels the wait for a backend that is not ready yet. */
  cancelHold?: (() => void) | undefined
}

/** The backend socket of a client connection. */
interface Upstream {
  socket: Socket
  backend: Backend
  /** Response bytes not yet handled (a partial head). */
  pending: Buffer | undefined
  scanned: number
  /** The current response's body framer, once its final head is through. */
  body: BodyFramer | undefined
  /** The backend keeps the connection open after this response. */
  reusable: boolean
  /** When the last response ended, and how long the backend said it keeps an idle connection (ms, its Keep-Alive hint less a second). */
  idleSince: number
  keepAliveMs: number
  error: string | undefined
}

/**
 * A TCP server for the proxy (its `connection` handler comes from {@link createProxy}). Half-open so
 * that a client which shuts down its sending side still gets its answer.
 */
export function createProxyServer(): Server {
  return createServer({ allowHalfOpen: true, noDelay: true })
}

/** The proxy's TCP connection handler, plus `close()` that ends every connection it has. */
export function createProxy(registry: Registry, hosts: HostCheck, options: ProxyOptions) {
  const connections = new Set<Socket>()
  const report = (text: string) => {
    try {
      options.onError?.(text)
    } catch {
      // never let reporting break the proxy
    }
  }

  /** Calls `go` once the backend is ready, or `fail` with 410 (it ended) / 504 (it took too long); returns the cancel function. */
  const whenReady = (backend: Backend, go: () => void, fail: (status: 410 | 504) => void): (() => void) => {
    let settled = false
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      off()
      clearTimeout(timer)
      fn()
    }
    const off = backend.onStatus((state) => {
      if (state.status === 'ready') settle(go)
      else if (backend.ending) settle(() => fail(410))
    })
    const timer = setTimeout(() => settle(() => fail(504)), options.holdMs)
    return () => settle(() => {})
  }

  /** One client connection: parses request heads, routes them, and relays responses. */
  class Connection {
    readonly client: Socket
    #peer: string | undefined
    /** Client bytes not yet handled (a partial head, pipelined requests, held body bytes). */
    #buf: Buffer | undefined
    #scanned = 0
    #request: BodyFramer | undefined
    #exchange: Exchange | undefined
    #up: Upstream | undefined
    #closed = false
    #held = false
    /** The client has shut down its sending side: answer what it completed, then close. */
    #inputEnded = false
    #upBlocked = false
    #tunneled = false

    constructor(client: Socket) {
      this.client = client
      client.setTimeout(IDLE_MS)
      client.on('data', this.#onData)
      client.on('drain', () => this.#up?.socket.resume())
      client.on('end', this.#onEnd)
      client.on('timeout', () => {
        if (this.#closed || (this.#exchange === undefined && !this.#tunneled)) this.destroy()
      })
      client.on('error', () => this.destroy())
      client.on('close', () => this.destroy())
    }

    #onData = (chunk: Buffer): void => {
      // Closing: what the client still sends is drained and dropped, never buffered.
      if (this.#closed) return
      this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk])
      this.#pump()
    }

    #onEnd = (): void => {
      // The client sent all it will: every request it completed is answered (a held one once the
      // backend is ready, pipelined ones in turn), then the connection closes.
      this.#inputEnded = true
      const exchange = this.#exchange
      if (this.#closed) this.client.end()
      else if (exchange === undefined) this.#endIfIdle()
      else if (!exchange.requestDone && !this.#held) this.destroy() // cut off mid-body: the request is lost
    }

    /** Closes a connection whose client has ended, once nothing is left to answer. */
    #endIfIdle(): void {
      if (!this.#inputEnded || this.#closed || this.#exchange !== undefined) return
      this.#closed = true
      this.client.end()
    }

    /** Passes on request bytes: the current body, then the next head once the exchange is over. */
    #pump(): void {
      while (!this.#closed && this.#buf !== undefined) {
        const exchange = this.#exchange
        if (exchange !== undefined) {
          if (exchange.requestDone || this.#held) {
            if (this.#buf.length > PIPELINE_BYTES) this.client.pause()
            return
          }
          const buf = this.#buf
          let end: number
          try {
            end = this.#request!.feed(buf, 0)
          } catch {
            return this.#fail(400, 'BadRequest', 'malformed request body')
          }
          this.#buf = end === -1 || end === buf.length ? undefined : buf.subarray(end)
          this.#toUpstream(end === -1 ? buf : buf.subarray(0, end))
          if (end !== -1) this.#requestDone(exchange)
          continue
        }
        let end: number
        try {
          end = headEnd(this.#buf, 0, this.#scanned, MAX_HEAD)
        } catch {
          return this.#fail(431, 'HeaderFieldsTooLarge', 'the request head is too large')
        }
        if (end === -1) {
          this.#scanned = this.#buf.length
          return
        }
        this.#scanned = 0
        const text = this.#buf.toString('latin1', 0, end)
        this.#buf = end === this.#buf.length ? undefined : this.#buf.subarray(end)
        this.#begin(text)
      }
    }

    /** Routes one request head: checks, rewrites, then sends it (or holds it until the backend is ready). */
    #begin(text: string): void {
      let head
      let kind
      try {
        head = parseHead(text, 'request')
        kind = bodyFraming(head.headers, 'request')
      } catch (error) {
        return this.#fail(400, 'BadRequest', error instanceof HeadError ? error.message : 'malformed request')
      }
      const { first: method, second: target, third: version, headers } = head
      let host: string | undefined
      let connection = ''
      let upgradeHeader = false
      let kept = ''
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i]!
        const value = headers[i + 1]!
        const first = name.charCodeAt(0) | 32 // ASCII lower-case
        if (first === 120 /* x */ || first === 99 /* c */ || first === 107 /* k */ || first === 112 /* p */ || first === 104 /* h */ || first === 117 /* u */) {
          const lower = name.toLowerCase()
          if (lower === 'host') host ??= value
          else if (lower === 'upgrade') upgradeHeader = true
          else if (lower === 'connection' || lower === 'proxy-connection') {
            connection += `${value},`
            continue
          } else if (lower.startsWith('x-verified-') || lower === 'keep-alive' || lower === 'x-forwarded-for' || lower === 'x-forwarded-proto') continue
        }
        kept += `${name}: ${value}\r\n`
      }
      if (method === 'CONNECT') return this.#fail(400, 'BadRequest', 'CONNECT is not supported')
      if (!hosts.allows(host)) return this.#fail(403, 'InvalidHost', 'this Host is not allowed')
      const [token, path] = splitToken(target)
      const grant = token === '' ? undefined : registry.grant(token)
      if (!grant || grant.backend.ending) return this.#fail(410, 'Gone', 'unknown or expired connection token')
      const upgrade = upgradeHeader && hasToken(connection, 'upgrade')
      const closeAfter = hasToken(connection, 'close') || (version === 'HTTP/1.0' && !hasToken(connection, 'keep-alive'))
      this.#peer ??= this.client.remoteAddress ?? ''
      const exchange: Exchange = {
        grant,
        method,
        head:
          `${method} ${path} ${version}\r\n${kept}${upgrade ? 'Connection: Upgrade\r\n' : ''}${identity(grant)}` +
          `x-verified-path: ${target}\r\nx-forwarded-for: ${this.#peer}\r\nx-forwarded-proto: http\r\n`,
        upgrade,
        closeAfter,
        counted: false,
        answered: false,
        requestDone: false,
      }
      this.#exchange = exchange
      this.#request = new BodyFramer(kind[0], kind[1])
      const backend = grant.backend
      if (backend.status === 'ready') return this.#send(exchange)
      this.#held = true
      this.client.pause()
      exchange.cancelHold = whenReady(
        backend,
        () => {
          this.#held = false
          this.#send(exchange)
          this.#pump()
          this.#flow()
        },
        (status) =>
          status === 410
            ? this.#fail(410, 'Gone', 'the backend ended before it was ready')
            : this.#fail(504, 'GatewayTimeout', 'the backend was not ready in time'),
      )
    }

    /** Writes the request head with the body bytes already here, in one write, to the backend's socket. */
    #send(exchange: Exchange): void {
      if (this.#closed) return
      const backend = exchange.grant.backend
      if (backend.ending) return this.#fail(410, 'Gone', 'the backend is terminating')
      // The body bytes already here, before anything is opened: a held request whose client ended
      // before its body did is lost, and nothing of it needs to reach the backend.
      const buf = this.#buf
      let body: Buffer | undefined
      if (buf !== undefined) {
        let end: number
        try {
          end = this.#request!.feed(buf, 0)
        } catch {
          return this.#fail(400, 'BadRequest', 'malformed request body')
        }
        body = end === -1 ? buf : buf.subarray(0, end)
        this.#buf = end === -1 || end === buf.length ? undefined : buf.subarray(end)
      }
      if (!this.#request!.done && this.#inputEnded) return this.destroy()
      registry.begin(backend)
      exchange.counted = true
      let up = this.#up
      if (up !== undefined && (up.backend !== backend || Date.now() - up.idleSince > up.keepAliveMs)) {
        // A request for another backend on the same client connection (the last exchange is over), or a
        // socket the backend is about to close as idle: a request written into it would be lost.
        this.#dropUpstream()
        up = undefined
      }
      up ??= this.#connect(backend)
      this.#toUpstream(joinHead(`${exchange.head}\r\n`, body))
      if (this.#request!.done) this.#requestDone(exchange)
    }

    #toUpstream(bytes: Buffer | string): void {
      const up = this.#up
      if (up === undefined || bytes.length === 0) return
      if (!up.socket.write(bytes, 'latin1')) {
        this.#upBlocked = true
        this.client.pause()
      }
    }

    #requestDone(exchange: Exchange): void {
      exchange.requestDone = true
      this.#request = undefined
    }

    /** Resumes reading from the client unless something still holds it. */
    #flow(): void {
      if (this.#closed || this.#held || this.#upBlocked) return
      if (this.#exchange !== undefined && this.#buf !== undefined && this.#buf.length > PIPELINE_BYTES) return
      this.client.resume()
    }

    #connect(backend: Backend): Upstream {
      const socket = connect({ host: registry.backendHost, port: backend.port!, noDelay: true })
      const up: Upstream = { socket, backend, pending: undefined, scanned: 0, body: undefined, reusable: true, idleSince: 0, keepAliveMs: Number.POSITIVE_INFINITY, error: undefined }
      this.#up = up
      socket.on('data', (chunk: Buffer) => this.#onUpData(up, chunk))
      socket.on('drain', () => {
        this.#upBlocked = false
        this.#flow()
      })
      socket.on('error', (error: NodeJS.ErrnoException) => {
        up.error ??= error.code ?? error.message
      })
      socket.on('close', () => this.#onUpClose(up))
      return up
    }

    #dropUpstream(): void {
      const up = this.#up
      this.#up = undefined
      this.#upBlocked = false
      up?.socket.destroy()
    }

    /** Relays backend bytes: interim heads as they are, the final head rewritten, then the body as is. */
    #onUpData(up: Upstream, chunk: Buffer): void {
      if (up !== this.#up || this.#closed) return
      const exchange = this.#exchange
      if (exchange === undefined || !exchange.counted) {
        // Bytes outside any exchange: the backend does not speak HTTP/1.1 as expected.
        return this.#dropUpstream()
      }
      let buf = chunk
      let from = 0
      for (;;) {
        if (up.body !== undefined) {
          let end: number
          try {
            end = up.body.feed(buf, from)
          } catch (error) {
            return this.#upstreamFailed(up, exchange, (error as FramingError).message)
          }
          if (end === -1) return this.#toClient(from === 0 ? buf : buf.subarray(from))
          this.#toClient(buf.subarray(from, end))
          if (end !== buf.length) up.reusable = false // bytes past the response: do not trust this socket again
          return this.#responseDone(up, exchange)
        }
        if (up.pending !== undefined) {
          buf = Buffer.concat([up.pending, from === 0 ? buf : buf.subarray(from)])
          from = 0
          up.pending = undefined
        }
        let end: number
        try {
          end = headEnd(buf, from, up.scanned, MAX_HEAD)
        } catch {
          return this.#upstreamFailed(up, exchange, 'response head too large')
        }
        if (end === -1) {
          up.pending = from === 0 ? buf : buf.subarray(from)
          up.scanned = up.pending.length
          return
        }
        up.scanned = 0
        let head
        try {
          head = parseHead(buf.toString('latin1', from, end), 'response')
        } catch (error) {
          return this.#upstreamFailed(up, exchange, (error as HeadError).message)
        }
        const status = Number(head.second)
        if (status === 101) {
          if (!exchange.upgrade) return this.#upstreamFailed(up, exchange, 'unexpected 101')
          return this.#tunnel(up, exchange, buf.subarray(from))
        }
        if (status < 200) {
          // 100 Continue, 103 Early Hints: passed through; the final response follows.
          exchange.answered = true
          this.#toClient(buf.subarray(from, end))
          from = end
          if (from === buf.length) return
          continue
        }
        const headText = this.#finalHead(up, exchange, head.first, status, head.third, head.headers)
        if (headText === undefined) return // failed
        const body = up.body!
        // Body bytes that arrived with the head go in the same write (only those of this response).
        let bodyEnd = end
        if (!body.done && end < buf.length) {
          try {
            bodyEnd = body.feed(buf, end)
          } catch (error) {
            return this.#upstreamFailed(up, exchange, (error as FramingError).message)
          }
          if (bodyEnd === -1) bodyEnd = buf.length
        }
        this.#toClient(joinHead(headText, bodyEnd === end ? undefined : buf.subarray(end, bodyEnd)))
        if (body.done) this.#responseDone(up, exchange, bodyEnd === buf.length ? undefined : buf.subarray(bodyEnd))
        return
      }
    }

    /** The final response head, rewritten; sets up the body framer. */
    #finalHead(up: Upstream, exchange: Exchange, version: string, status: number, reason: string, headers: string[]): string | undefined {
      let kind
      try {
        kind = responseHasBody(exchange.method, status) ? bodyFraming(headers, 'response') : (['none', 0] as const)
      } catch (error) {
        this.#upstreamFailed(up, exchange, (error as HeadError).message)
        return undefined
      }
      let text = `HTTP/1.1 ${status} ${reason}\r\n`
      let cors = false
      let backendCloses = version === 'HTTP/1.0'
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i]!
        const first = name.charCodeAt(0) | 32
        if (first === 99 /* c */ || first === 107 /* k */ || first === 97 /* a */) {
          const lower = name.toLowerCase()
          if (lower === 'connection') {
            const value = headers[i + 1]!
            if (hasToken(value, 'close')) backendCloses = true
            else if (hasToken(value, 'keep-alive')) backendCloses = false
            continue
          }
          if (lower === 'keep-alive') {
            const hint = /timeout=(\d+)/i.exec(headers[i + 1]!)
            if (hint !== null) up.keepAliveMs = Number(hint[1]) * 1000 - 1000
            continue
          }
          if (lower.startsWith('access-control-')) cors = true
        }
        text += `${name}: ${headers[i + 1]!}\r\n`
      }
      text += `x-plane-backend-id: ${up.backend.id}\r\n`
      // As Plane: CORS headers only when the backend set none itself.
      if (!cors) text += CORS_RESPONSE
      const closeDelimited = kind[0] === 'close'
      if (closeDelimited || backendCloses) up.reusable = false
      // A body that ends when the backend closes, or an upgrade refused: the client connection ends too.
      if (closeDelimited || exchange.upgrade) exchange.closeAfter = true
      // Without a close, say how long an idle connection stays open, so that clients close theirs first.
      text += exchange.closeAfter ? 'connection: close\r\n' : KEEP_ALIVE
      up.body = new BodyFramer(kind[0], kind[1])
      exchange.answered = true
      return `${text}\r\n`
    }

    #toClient(bytes: Buffer | string): void {
      if (bytes.length === 0) return
      if (!this.client.write(bytes, 'latin1')) this.#up?.socket.pause()
    }

    /** The response is complete: end the exchange, keep or drop the backend socket, go on with the next request. */
    #responseDone(up: Upstream, exchange: Exchange, extra?: Buffer): void {
      up.body = undefined
      if (extra !== undefined) up.reusable = false
      up.idleSince = Date.now()
      this.#uncount(exchange)
      exchange.cancelHold = undefined
      // A backend that answered before reading the whole body: the rest of the body has nowhere to go.
      if (!exchange.requestDone) exchange.closeAfter = true
      if (!up.reusable) this.#dropUpstream()
      this.#exchange = undefined
      if (exchange.closeAfter) {
        this.#closed = true
        this.client.end()
        return
      }
      this.#flow()
      this.#pump()
      this.#endIfIdle()
    }

    #uncount(exchange: Exchange): void {
      if (!exchange.counted) return
      exchange.counted = false
      registry.end(exchange.grant.backend)
    }

    /** The backend failed this exchange: 502 when nothing was answered yet, otherwise cut the client off. */
    #upstreamFailed(up: Upstream, exchange: Exchange, why: string): void {
      report(`proxy: ${up.backend.id}: ${why}`)
      this.#dropUpstream()
      if (exchange.answered) return this.destroy()
      this.#fail(502, 'BadGateway', 'the backend did not answer')
    }

    #onUpClose(up: Upstream): void {
      if (up !== this.#up) return
      this.#up = undefined
      this.#upBlocked = false
      const exchange = this.#exchange
      if (this.#closed || exchange === undefined) return // an idle backend socket closed: the next request opens another
      if (this.#tunneled) return this.destroy()
      if (up.body !== undefined && up.body.kind === 'close') {
        // A close-delimited body ends here.
        up.reusable = false
        return this.#responseDone(up, exchange)
      }
      if (!exchange.counted) return // not sent yet (held): nothing lost
      this.#upstreamFailed(up, exchange, up.error ?? 'connection closed')
    }

    /** The backend answered 101: from now on both sockets are one byte stream. */
    #tunnel(up: Upstream, exchange: Exchange, response: Buffer): void {
      this.#tunneled = true
      exchange.answered = true
      this.client.setTimeout(0)
      const client = this.client
      const socket = up.socket
      client.removeListener('data', this.#onData)
      socket.removeAllListeners('data')
      socket.removeAllListeners('drain')
      client.removeAllListeners('drain')
      client.removeListener('end', this.#onEnd)
      client.setNoDelay(true)
      client.write(response)
      if (this.#buf !== undefined) socket.write(this.#buf)
      this.#buf = undefined
      relay(socket, client)
      relay(client, socket)
      socket.resume()
      client.resume()
    }

    /** Answers with an error and closes the connection (what follows the failed request is not trusted). */
    #fail(status: number, code: string, message: string): void {
      if (this.#closed) return
      const exchange = this.#exchange
      if (exchange !== undefined) {
        exchange.cancelHold?.()
        this.#uncount(exchange)
        if (exchange.answered) return this.destroy()
      }
      this.#closed = true
      this.#exchange = undefined
      this.#dropUpstream()
      this.#buf = undefined
      if (!this.client.writable) return void this.client.destroy()
      this.client.end(errorResponse(status, code, message, true))
      this.client.resume() // drain what the client still sends until it sees the close
    }

    /** Ends everything at once: the client, the backend socket, the hold, the activity count. */
    destroy(): void {
      this.#closed = true
      const exchange = this.#exchange
      if (exchange !== undefined) {
        exchange.cancelHold?.()
        this.#uncount(exchange)
      }
      this.#dropUpstream()
      this.client.destroy()
      connections.delete(this.client)
    }
  }

  const onConnection = (client: Socket): void => {
    connections.add(client)
    new Connection(client)
  }

  /** Ends every client connection (and with it its backend socket). */
  const close = () => {
    for (const socket of connections) socket.destroy()
    connections.clear()
  }

  return { onConnection, close }
}
