/**
 * The minimal HTTP/1.1 the proxy needs (RFC 9112), with no sockets: find where a message head ends,
 * split a head into its start line and raw header pairs, and find where a body ends (Content-Length,
 * chunked, none, or until the connection closes). Bodies are never decoded or copied: the framer
 * only says how many bytes of a buffer belong to the current body, so the proxy can pass them on as is.
 */

/** A head the proxy cannot pass on: 400 (malformed) or 431 (too large). */
export class HeadError extends Error {
  override name = 'HeadError'
  constructor(
    readonly status: 400 | 431,
    message: string,
  ) {
    super(message)
  }
}

/** A malformed body (bad chunk framing). */
export class FramingError extends Error {
  override name = 'FramingError'
}

const CRLFCRLF = Buffer.from('\r\n\r\n')

/**
 * The offset just past the `\r\n\r\n` that ends the head starting at `start` in `buf`, or -1 when the
 * head is not complete yet. `scanFrom` (≥ start) skips bytes already searched. Throws a 431 when the
 * head is (or would be) longer than `maxBytes`.
 */
export function headEnd(buf: Buffer, start: number, scanFrom: number, maxBytes: number): number {
  const from = Math.max(start, scanFrom - 3)
  const at = buf.indexOf(CRLFCRLF, from)
  if (at === -1) {
    if (buf.length - start > maxBytes) throw new HeadError(431, 'the request head is too large')
    return -1
  }
  if (at + 4 - start > maxBytes) throw new HeadError(431, 'the request head is too large')
  return at + 4
}

/** A parsed head: the start line's three parts and the header fields as `[name, value, name, value, …]`. */
export interface Head {
  /** Request: the method. Response: the version (`HTTP/1.1`). */
  first: string
  /** Request: the target (`/a/b?c`). Response: the status code as text. */
  second: string
  /** Request: the version. Response: the reason phrase (may be empty). */
  third: string
  headers: string[]
}

// tchar (RFC 9110 §5.6.2): what header names and methods may contain.
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 48; c <= 57; c++) TCHAR[c] = 1
for (let c = 65; c <= 90; c++) TCHAR[c] = 1
for (let c = 97; c <= 122; c++) TCHAR[c] = 1

function isToken(text: string, from: number, to: number): boolean {
  if (to <= from) return false
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c > 127 || TCHAR[c] === 0) return false
  }
  return true
}

function bad(message: string): HeadError {
  return new HeadError(400, message)
}

/**
 * Parses a head (`text` is its latin1 decoding, ending with `\r\n\r\n`). Header values are trimmed of
 * optional whitespace; obsolete line folding, bare CR/LF, control characters and missing colons are 400s.
 */
export function parseHead(text: string, kind: 'request' | 'response'): Head {
  let eol = text.indexOf('\r\n')
  const line = text.slice(0, eol)
  const sp1 = line.indexOf(' ')
  const sp2 = sp1 === -1 ? -1 : line.indexOf(' ', sp1 + 1)
  let first: string
  let second: string
  let third: string
  if (kind === 'request') {
    if (sp1 === -1 || sp2 === -1 || line.indexOf(' ', sp2 + 1) !== -1) throw bad('malformed request line')
    first = line.slice(0, sp1)
    second = line.slice(sp1 + 1, sp2)
    third = line.slice(sp2 + 1)
    if (!isToken(first, 0, first.length)) throw bad('malformed method')
    if (third !== 'HTTP/1.1' && third !== 'HTTP/1.0') throw bad('unsupported HTTP version')
    for (let i = 0; i < second.length; i++) {
      const c = second.charCodeAt(i)
      if (c <= 32 || c === 127) throw bad('malformed request target')
    }
    if (second === '') throw bad('malformed request target')
  } else {
    if (sp1 === -1) throw bad('malformed status line')
    first = line.slice(0, sp1)
    second = sp2 === -1 ? line.slice(sp1 + 1) : line.slice(sp1 + 1, sp2)
    third = sp2 === -1 ? '' : line.slice(sp2 + 1)
    if (!first.startsWith('HTTP/1.') || second.length !== 3 || !/^[1-9]\d\d$/.test(second)) throw bad('malformed status line')
  }
  const headers: string[] = []
  const end = text.length - 4
  while (eol < end) {
    const start = eol + 2
    eol = text.indexOf('\r\n', start)
    const colon = text.indexOf(':', start)
    if (colon === -1 || colon > eol) throw bad('malformed header line')
    if (!isToken(text, start, colon)) throw bad('malformed header name')
    let from = colon + 1
    let to = eol
    while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++
    while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i)
      if ((c < 32 && c !== 9) || c === 127) throw bad('malformed header value')
    }
    headers.push(text.slice(start, colon), text.slice(from, to))
  }
  return { first, second, third, headers }
}

/** True when the comma-separated header `value` contains `token` (case-insensitive). */
export function hasToken(value: string, token: string): boolean {
  const lower = value.toLowerCase()
  if (lower === token) return true
  for (const part of lower.split(',')) if (part.trim() === token) return true
  return false
}

/** How a message's body ends. */
export type BodyKind = 'none' | 'length' | 'chunked' | 'close'

/**
 * How the body of a message with these headers is framed (RFC 9112 §6.3). Requests without
 * Content-Length or chunked coding have no body; a request with another transfer coding, both
 * framings, or conflicting lengths is a 400 (a smuggling vector). Returns the kind and the length.
 */
export function bodyFraming(headers: string[], kind: 'request' | 'response'): [BodyKind, number] {
  let length = -1
  let te: string | undefined
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!
    if (name.length === 14 && name.toLowerCase() === 'content-length') {
      const value = headers[i + 1]!
      if (!/^\d{1,15}$/.test(value)) throw bad('malformed Content-Length')
      const n = Number(value)
      if (length !== -1 && length !== n) throw bad('conflicting Content-Length')
      length = n
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      te = te === undefined ? headers[i + 1]! : `${te}, ${headers[i + 1]!}`
    }
  }
  if (te !== undefined) {
    if (length !== -1 && kind === 'request') throw bad('both Content-Length and Transfer-Encoding')
    const codings = te.toLowerCase().split(',')
    if (codings[codings.length - 1]!.trim() === 'chunked') return ['chunked', 0]
    if (kind === 'request') throw bad('unsupported Transfer-Encoding')
    return ['close', 0]
  }
  if (length !== -1) return length === 0 ? ['none', 0] : ['length', length]
  return kind === 'request' ? ['none', 0] : ['close', 0]
}

/** Whether a response to `method` with this status carries a body at all (RFC 9112 §6.3 rules 1–2). */
export function responseHasBody(method: string, status: number): boolean {
  return !(method === 'HEAD' || status < 200 || status === 204 || status === 304)
}

// Chunked decoder states.
const SIZE = 0 // hex digits of a chunk size
const EXT = 1 // chunk extension, up to the CR
const SIZE_LF = 2 // the LF after the size line
const DATA = 3 // chunk data
const DATA_CR = 4 // the CRLF after chunk data
const DATA_LF = 5
const TRAILER_START = 6 // start of a trailer line, or the final CRLF
const TRAILER = 7 // inside a trailer line
const TRAILER_LF = 8 // the LF ending a trailer line
const FINAL_LF = 9 // the LF of the final CRLF

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 32
  if (l >= 97 && l <= 102) return l - 87
  return -1
}

/**
 * Finds where one body ends, fed buffers as they arrive. `feed(buf, from)` returns the offset in
 * `buf` just past the body's last byte, or -1 when all of `buf` from `from` belongs to the body
 * and more is to come. A `close` body never ends by itself: the caller ends it at EOF.
 */
export class BodyFramer {
  #kind: BodyKind
  #remaining: number
  #state = SIZE
  #digits = 0
  #trailerBytes = 0

  constructor(kind: BodyKind, length = 0) {
    this.#kind = kind
    this.#remaining = length
  }

  /** True once the body is complete (always for `none`). */
  get done(): boolean {
    return this.#kind === 'none'
  }

  get kind(): BodyKind {
    return this.#kind
  }

  feed(buf: Buffer, from: number): number {
    switch (this.#kind) {
      case 'none':
        return from
      case 'close':
        return -1
      case 'length': {
        const available = buf.length - from
        if (available < this.#remaining) {
          this.#remaining -= available
          return -1
        }
        const end = from + this.#remaining
        this.#remaining = 0
        this.#kind = 'none'
        return end
      }
      case 'chunked':
        return this.#chunked(buf, from)
    }
  }

  #chunked(buf: Buffer, from: number): number {
    let i = from
    const n = buf.length
    while (i < n) {
      const state = this.#state
      if (state === DATA) {
        const take = Math.min(this.#remaining, n - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#state = DATA_CR
        continue
      }
      const c = buf[i++]!
      switch (state) {
        case SIZE: {
          const v = hexValue(c)
          if (v !== -1) {
            if (++this.#digits > 12) throw new FramingError('chunk size too large')
            this.#remaining = this.#remaining * 16 + v
          } else if (this.#digits === 0) throw new FramingError('malformed chunk size')
          else if (c === 13) this.#state = SIZE_LF
          else if (c === 59 /* ; */ || c === 32 || c === 9) this.#state = EXT
          else throw new FramingError('malformed chunk size')
          break
        }
        case EXT:
          if (c === 13) this.#state = SIZE_LF
          else if (c === 10) throw new FramingError('bare LF in chunk extension')
          break
        case SIZE_LF:
          if (c !== 10) throw new FramingError('malformed chunk size line')
          this.#digits = 0
          this.#state = this.#remaining === 0 ? TRAILER_START : DATA
          break
        case DATA_CR:
          if (c !== 13) throw new FramingError('missing CRLF after chunk data')
          this.#state = DATA_LF
          break
        case DATA_LF:
          if (c !== 10) throw new FramingError('missing CRLF after chunk data')
          this.#state = SIZE
          break
        // Line ends here are CRLF only: a peer that took a bare LF as one would see the body end
        // earlier than we do, and whatever follows as a request of its own (smuggling).
        case TRAILER_START:
          if (c === 13) this.#state = FINAL_LF
          else if (c === 10) throw new FramingError('bare LF at the end of a chunked body')
          else this.#state = TRAILER
          break
        case TRAILER:
          if (++this.#trailerBytes > 16384) throw new FramingError('trailers too large')
          if (c === 13) this.#state = TRAILER_LF
          else if (c === 10) throw new FramingError('bare LF in a trailer line')
          break
        case TRAILER_LF:
          if (c !== 10) throw new FramingError('malformed trailer line')
          this.#state = TRAILER_START
          break
        case FINAL_LF:
          if (c !== 10) throw new FramingError('malformed end of chunked body')
          this.#kind = 'none'
          return i
      }
    }
    return -1
  }
}
