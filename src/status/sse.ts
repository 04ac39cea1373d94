/**
 * A server-sent-events reader over a fetch body: bytes in, complete messages out, as the HTML
 * spec's event stream interpretation says (the WPT and eventsource-parser vectors are its tests):
 * - one `TextDecoder` per connection with `stream: true` (multi-byte characters split across
 *   chunks stay intact; a BOM is stripped at the start of each connection only);
 * - line endings are normalised to LF before parsing, carrying a trailing CR across chunks, so an
 *   event ended by a bare CR at the end of a chunk is delivered at once (eventsource-parser 3.1.1,
 *   used before, held it back, sometimes for ever). With only LF left, what remains of parsing is
 *   splitting `field: value` lines, done here: the library cost 1.2 KB gzip of the browser bundle;
 * - a cap, in UTF-8 bytes, on every event and on the text buffered since the last blank line, so
 *   that an oversized event or a stream that never ends one fails with a {@link ProtocolError}
 *   and memory stays bounded;
 * - the caller's signal is honoured by the reader itself (cancel, never awaited).
 *
 * Imports nothing from `node:*`.
 */
import { ProtocolError } from '../errors.js'

/** One dispatched event. */
export interface SseMessage {
  /** The data lines joined with LF. */
  data: string
  /** The `id:` of this event, when it had one (`''` when the server reset it). */
  id: string | undefined
  /** The `event:` type, when it had one. */
  event: string | undefined
}

/** Callbacks of an {@link SseDecoder}. */
export interface SseHandlers {
  /** Called for every complete event with at least one data line. */
  onMessage(message: SseMessage): void
  /**
   * Called when a blank line ends a block that had an `id:` (before its `onMessage`, if any): the
   * spec updates the last event ID there even when the block has no data, so an id sent in a block
   * of its own still comes back as `Last-Event-ID`.
   */
  onId?(id: string): void
  /** Called for every valid `retry:` field, in milliseconds. */
  onRetry?(ms: number): void
  /** Called by {@link readEventStream} for every chunk read, however small (liveness: a `:` comment counts). */
  onChunk?(): void
}

/** The largest event, or run of lines without a blank line, accepted by default (UTF-8 bytes). */
export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024

/** A push-style decoder for one connection: feed it bytes, it calls back with events. */
export interface SseDecoder {
  /** Decodes one chunk. Throws {@link ProtocolError} when an event grows past the cap. */
  push(chunk: Uint8Array): void
  /** Decodes text that is already decoded (tests, or a transport that yields strings). */
  pushText(text: string): void
  /** The stream ended: flushes the decoder. An incomplete last event is discarded, as the spec says. */
  end(): void
}

/**
 * The decoder behind {@link createSseDecoder}. A class rather than closures: thousands of streams
 * may be open at once, and per-connection closures are most of what a follower costs in heap.
 */
class Decoder implements SseDecoder {
  readonly #handlers: SseHandlers
  readonly #max: number
  readonly #decoder = new TextDecoder()
  #lastWasCR = false
  #endedWithLF = false
  #pending = 0 // UTF-8 bytes since the last blank line
  #started = false
  /** The text after the last LF (an incomplete line). */
  #line = ''
  /** The event being read: its data lines so far (joined with LF), their count, `id:` and `event:`. */
  #data = ''
  #dataLines = 0
  #id: string | undefined
  #event: string | undefined

  constructor(handlers: SseHandlers, maxEventBytes: number) {
    this.#handlers = handlers
    this.#max = maxEventBytes
  }

  push(chunk: Uint8Array): void {
    this.#feed(this.#decoder.decode(chunk, { stream: true }))
  }

  pushText(text: string): void {
    // The byte path's TextDecoder strips one leading BOM; do the same for decoded text.
    this.#feed(!this.#started && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  }

  end(): void {
    this.#feed(this.#decoder.decode())
  }

  #feed(raw: string): void {
    if (raw === '') return
    this.#started = true
    let text = raw
    // A CR ending the previous chunk was already turned into LF: a LF right after it is its CRLF pair.
    if (this.#lastWasCR && text.charCodeAt(0) === 10) text = text.slice(1)
    this.#lastWasCR = raw.charCodeAt(raw.length - 1) === 13
    if (text.indexOf('\r') !== -1) text = text.replace(/\r\n?/g, '\n')
    if (text === '') return
    // Bound every event (and every run of lines without a blank line) in UTF-8 bytes: the ones that
    // arrive whole within this text as well as the one left pending at its end. Events before an
    // oversized one are still delivered.
    let start = 0
    if (this.#endedWithLF && text.charCodeAt(0) === 10) {
      // This LF ends the blank line begun by the previous text's last LF.
      this.#pending = 0
      start = 1
    }
    this.#endedWithLF = text.charCodeAt(text.length - 1) === 10
    for (;;) {
      const blank = text.indexOf('\n\n', start)
      this.#pending += utf8Length(text, start, blank === -1 ? text.length : blank)
      if (this.#pending > this.#max) {
        this.#parse(text.slice(0, start))
        throw new ProtocolError(`status stream: an event exceeded ${this.#max} bytes`, 'stream')
      }
      if (blank === -1) break
      this.#pending = 0
      start = blank + 2
    }
    this.#parse(text)
  }

  /** Parses LF-only text: every complete line; the rest waits for the next text. */
  #parse(text: string): void {
    const buffered = this.#line + text
    let start = 0
    for (let end = buffered.indexOf('\n'); end !== -1; end = buffered.indexOf('\n', start)) {
      this.#field(buffered.slice(start, end))
      start = end + 1
    }
    this.#line = buffered.slice(start)
  }

  /** One line: a blank one dispatches the id (if any) and the event (if it has data); unknown fields, comments and bad `retry:` values are ignored. */
  #field(line: string): void {
    if (line === '') {
      if (this.#id !== undefined) this.#handlers.onId?.(this.#id)
      if (this.#dataLines > 0) this.#handlers.onMessage({ data: this.#data, id: this.#id, event: this.#event })
      this.#data = ''
      this.#dataLines = 0
      this.#id = this.#event = undefined
      return
    }
    const colon = line.indexOf(':')
    const name = colon === -1 ? line : line.slice(0, colon)
    // One space after the colon is not part of the value.
    const value = colon === -1 ? '' : line.slice(colon + (line.charCodeAt(colon + 1) === 32 ? 2 : 1))
    if (name === 'data') this.#data = this.#dataLines++ === 0 ? value : `${this.#data}\n${value}`
    else if (name === 'event') this.#event = value || undefined
    else if (name === 'id') {
      if (!value.includes('\0')) this.#id = value
    } else if (name === 'retry' && /^\d+$/.test(value)) this.#handlers.onRetry?.(parseInt(value, 10))
  }
}

/** The UTF-8 length of `text.slice(from, to)`, without encoding it. */
function utf8Length(text: string, from: number, to: number): number {
  let bytes = to - from
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    // 2 bytes below U+0800, else 3; a surrogate pair (4 bytes) counts 2 + 2.
    bytes += code < 0x800 || (code >= 0xd800 && code <= 0xdfff) ? 1 : 2
  }
  return bytes
}

/** Creates a decoder for ONE connection (make a new one for every reconnect). */
export function createSseDecoder(handlers: SseHandlers, maxEventBytes = DEFAULT_MAX_EVENT_BYTES): SseDecoder {
  return new Decoder(handlers, maxEventBytes)
}

/** Options of {@link readEventStream}. */
export interface ReadEventStreamOptions {
  /** Stops reading: the body is cancelled (not awaited) and the promise rejects with `signal.reason`. */
  signal?: AbortSignal | undefined
  /** See {@link createSseDecoder}. @default 65536 */
  maxEventBytes?: number | undefined
}

/**
 * Reads an event stream body to its end. Resolves on a clean end of stream, rejects with
 * `signal.reason` on abort, with {@link ProtocolError} when an event is too large, and with the
 * transport's error when the connection breaks.
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  handlers: SseHandlers,
  options: ReadEventStreamOptions = {},
): Promise<void> {
  const { signal } = options
  const sse = createSseDecoder(handlers, options.maxEventBytes)
  const reader = body.getReader()
  // Some bodies (mocks) keep streaming after fetch's signal aborts, and an awaited cancel can hang:
  // cancel without waiting and stop reading at once.
  const cancel = () => void reader.cancel().catch(() => {})
  if (signal?.aborted) {
    cancel()
    throw signal.reason
  }
  signal?.addEventListener('abort', cancel, { once: true })
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>
      try {
        result = await reader.read()
      } catch (error) {
        if (signal?.aborted) throw signal.reason
        throw error
      }
      if (signal?.aborted) throw signal.reason
      if (result.done) break
      handlers.onChunk?.()
      sse.push(result.value)
      // A handler may have stopped us while dispatching this chunk.
      if (signal?.aborted) throw signal.reason
    }
    sse.end()
  } catch (error) {
    cancel()
    throw error
  } finally {
    signal?.removeEventListener('abort', cancel)
  }
}
