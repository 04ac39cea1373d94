import { createParser } from 'eventsource-parser'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { createSseDecoder, readEventStream, type SseMessage } from '../../src/status/sse.js'

const enc = new TextEncoder()

function decodeText(chunks: string[], max?: number): SseMessage[] {
  const out: SseMessage[] = []
  const d = createSseDecoder({ onMessage: (m) => out.push(m) }, max)
  for (const c of chunks) d.pushText(c)
  d.end()
  return out
}

function decodeBytes(chunks: Uint8Array[], onRetry?: (ms: number) => void, max?: number): SseMessage[] {
  const out: SseMessage[] = []
  const d = createSseDecoder({ onMessage: (m) => out.push(m), ...(onRetry ? { onRetry } : {}) }, max)
  for (const c of chunks) d.push(c)
  d.end()
  return out
}

const data = (messages: SseMessage[]) => messages.map((m) => m.data)

describe('SSE decoding (WPT and eventsource-parser vectors)', () => {
  it('parses field names case-sensitively, strips one space, keeps NUL, mixes CR/LF/CRLF', () => {
    const input = 'data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n'
    expect(data(decodeText([input]))).toEqual(['\0\n 2\n1\n3\n\n4'])
  })

  it('delivers an event ended by a lone CR at the end of the body (format-newlines)', () => {
    expect(data(decodeText(['data:test\r\ndata\ndata:test\r\n\r']))).toEqual(['test\n\ntest'])
  })

  it('delivers an event ended by a lone CR at the end of a chunk at once, not on the next chunk', () => {
    const out: string[] = []
    const d = createSseDecoder({ onMessage: (m) => out.push(m.data) })
    d.pushText('data:a\r\r')
    expect(out).toEqual(['a'])
    d.pushText('data:b\r\r')
    expect(out).toEqual(['a', 'b'])
  })

  it('treats a CRLF split across chunks as one line ending', () => {
    expect(data(decodeText(['data: A\r\n', 'data: B\r', '\n', 'data: C\r\n', '\n']))).toEqual(['A\nB\nC'])
  })

  it('strips a BOM only at the start of the stream', () => {
    expect(data(decodeText(['\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n']))).toEqual(['1', '3'])
    expect(data(decodeText(['\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n']))).toEqual(['2', '3'])
    const bytes = enc.encode('\uFEFFdata:1\n\n')
    expect(data(decodeBytes([bytes.slice(0, 1), bytes.slice(1, 2), bytes.slice(2)]))).toEqual(['1'])
  })

  it('handles bare data lines, empty data and leading tabs', () => {
    expect(data(decodeText(['data:\n\ndata\ndata\n\ndata:test\n\n']))).toEqual(['', '\n', 'test'])
    expect(data(decodeText(['data:\ttest\rdata: \ndata:test\n\n']))).toEqual(['\ttest\n\ntest'])
  })

  it('reads id and retry fields and ignores bogus retry values', () => {
    const retries: number[] = []
    const out = decodeBytes([enc.encode('retry:02000\nretry:1000x\nretry\nretry: 5\nid:7\ndata:x\n\n')], (ms) => retries.push(ms))
    expect(retries).toEqual([2000, 5])
    expect(out).toEqual([{ data: 'x', id: '7', event: undefined }])
  })

  it('discards an incomplete event at the end of the stream', () => {
    expect(data(decodeText(['data:a\n\ndata:partial\n']))).toEqual(['a'])
  })

  it('keeps a multi-byte character split across chunks intact', () => {
    const bytes = enc.encode('data:Espen ❤️ Kokos\n\n')
    const cut = 'data:Espen '.length + 2 // inside the 3-byte ❤
    expect(data(decodeBytes([bytes.slice(0, cut), bytes.slice(cut)]))).toEqual(['Espen ❤️ Kokos'])
  })

  it('fails with ProtocolError on an endless line, and on an event that never ends', () => {
    expect(() => decodeText(['data:' + 'x'.repeat(200)], 100)).toThrow(ProtocolError)
    const d = createSseDecoder({ onMessage: () => {} }, 100)
    expect(() => {
      for (let i = 0; i < 50; i++) d.pushText('data:xx\n')
    }).toThrow(ProtocolError)
  })

  it('maxEventBytes bounds an event that arrives whole in one chunk, and the events before it are delivered', () => {
    const out: SseMessage[] = []
    const d = createSseDecoder({ onMessage: (m) => out.push(m) }, 1024)
    expect(() => d.push(enc.encode(`data:small\n\ndata:${'x'.repeat(5_000)}\n\ndata:after\n\n`))).toThrow(ProtocolError)
    expect(data(out)).toEqual(['small'])
  })

  it('maxEventBytes counts UTF-8 bytes, not characters', () => {
    // 300 × "€" is 300 characters but 900 bytes.
    const euros = `data:${'€'.repeat(300)}\n\n`
    expect(() => decodeBytes([enc.encode(euros)], undefined, 512)).toThrow(ProtocolError)
    expect(() => decodeText([euros], 512)).toThrow(ProtocolError)
    expect(data(decodeBytes([enc.encode(euros)], undefined, 1024))).toEqual(['€'.repeat(300)])
    // Astral characters: 4 bytes each (a surrogate pair).
    expect(() => decodeText([`data:${'😀'.repeat(100)}\n\n`], 300)).toThrow(ProtocolError)
    expect(decodeText([`data:${'😀'.repeat(100)}\n\n`], 410)).toHaveLength(1)
  })

  it('does not count completed events against the cap', () => {
    const chunks = Array.from({ length: 200 }, (_, i) => `data:${i}\n\n`)
    expect(decodeText(chunks, 100)).toHaveLength(200)
    // ... nor a blank line that spans two chunks
    const split = Array.from({ length: 100 }, () => ['data:xxxxxxxxxx\n', '\n']).flat()
    expect(decodeText(split, 64)).toHaveLength(100)
  })
})

const TRANSCRIPT =
  '\uFEFF: hello\r\n' +
  'data:{"status":"scheduled","time":"2024-08-15T14:11:55.120Z"}\nid:scheduled\n\n' +
  'retry: 1500\r' +
  'data: {"status":"loading","time":1723731115300}\r\nid: loading\r\n\r\n' +
  ':\n\n' +
  'event:message\rdata:{"status":"ready",\rdata:"time":"2024-08-15T14:11:57.010Z","note":"Espen ❤️ 🎉"}\rid:ready\r\r' +
  'data:{"status":"terminated","time":"2024-08-15T14:20:00.000Z"}\n\n'

describe('SSE decoding: chunking', () => {
  it('any split of the bytes into chunks gives the same events as one chunk (property)', () => {
    const bytes = enc.encode(TRANSCRIPT)
    const whole = decodeBytes([bytes])
    expect(whole.map((m) => m.id)).toEqual(['scheduled', 'loading', 'ready', undefined])
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length]
        const chunks = points.slice(1).map((end, i) => bytes.slice(points[i], end))
        expect(decodeBytes(chunks)).toEqual(whole)
      }),
      { numRuns: 500 },
    )
  })

  it('maxEventBytes holds however the bytes are split: an event over it fails, one at it passes (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300, size: 'max' }).map((d) => d.replace(/[\r\n]/g, ' ')),
        fc.integer({ min: 64, max: 700 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 2_000 }), { maxLength: 20 }),
        (data, max, rawCuts) => {
          const bytes = enc.encode(`data:first\n\ndata:${data}\n\ndata:last\n\n`)
          const size = enc.encode(`data:${data}`).length
          const points = [0, ...rawCuts.filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length]
          const out: SseMessage[] = []
          const d = createSseDecoder({ onMessage: (m) => out.push(m) }, max)
          let failed = false
          try {
            for (let i = 1; i < points.length; i++) d.push(bytes.slice(points[i - 1], points[i]))
            d.end()
          } catch (error) {
            expect(error).toBeInstanceOf(ProtocolError)
            failed = true
          }
          expect(failed, `${size} bytes against a cap of ${max}`).toBe(size > max)
          expect(out[0]?.data).toBe('first')
          if (!failed) expect(out).toHaveLength(3)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('parses every LF-only stream as eventsource-parser 3 does: the same events, ids, types and retries (property)', () => {
    const line = fc.oneof(
      fc.constantFrom('', 'data', 'data:', 'data: ', 'id', 'id:', 'event:', 'retry:', 'retry: 7', 'retry:12x', ':', ': c', 'Data:x', 'id:a\0b'),
      fc.tuple(fc.constantFrom('data', 'id', 'event', 'retry', 'other', ''), fc.constantFrom(':', ': ', ':  ', ''), fc.string({ maxLength: 6 })).map(
        ([field, colon, value]) => `${field}${colon}${value.replace(/[\r\n]/g, ' ')}`,
      ),
    )
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 8 }), (lines, rawCuts) => {
        const text = lines.map((l) => `${l}\n`).join('')
        const expected: unknown[] = []
        const parser = createParser({ onEvent: (e) => expected.push({ data: e.data, id: e.id, event: e.event }), onRetry: (ms) => expected.push(ms) })
        parser.feed(text)
        // The last event ID is set by every block that had an `id:`, data or not. eventsource-parser
        // reports ids only with data, so the reference for ids parses the same text with a `data:`
        // line added to every block (which does not change its id).
        const expectedIds: string[] = []
        const withData = lines.map((l) => (l === '' ? 'data:\n\n' : `${l}\n`)).join('')
        createParser({ onEvent: (e) => e.id !== undefined && expectedIds.push(e.id) }).feed(withData)
        const got: unknown[] = []
        const ids: string[] = []
        const d = createSseDecoder({ onMessage: (m) => got.push(m), onRetry: (ms) => got.push(ms), onId: (id) => ids.push(id) })
        const points = [0, ...rawCuts.filter((c) => c < text.length).sort((a, b) => a - b), text.length]
        for (let i = 1; i < points.length; i++) d.pushText(text.slice(points[i - 1], points[i]))
        d.end()
        expect(got).toEqual(expected)
        expect(ids).toEqual(expectedIds)
      }),
      { numRuns: 1000 },
    )
  })

  it('a block with an id but no data sets the last event ID without dispatching an event', () => {
    const events: SseMessage[] = []
    const ids: string[] = []
    const d = createSseDecoder({ onMessage: (m) => events.push(m), onId: (id) => ids.push(id) })
    d.pushText('data: a\n\nid: 7\n\n: comment\n\nid\n\nid: 8\nretry: 5\n\nid: 9\n')
    d.end()
    expect(events).toEqual([{ data: 'a', id: undefined, event: undefined }])
    // An `id` with no value resets it to ''; the unterminated last block sets nothing.
    expect(ids).toEqual(['7', '', '8'])
  })

  it('byte-at-a-time gives the same events as one chunk', () => {
    const bytes = enc.encode(TRANSCRIPT)
    expect(decodeBytes(Array.from(bytes, (b) => Uint8Array.of(b)))).toEqual(decodeBytes([bytes]))
  })
})

describe('readEventStream', () => {
  const cancelled = new WeakSet<object>()
  function body(chunks: string[], thenHang = false): ReadableStream<Uint8Array> {
    let i = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i < chunks.length) controller.enqueue(enc.encode(chunks[i++]!))
        else if (!thenHang) controller.close()
        else return new Promise(() => {}) // never answers, like a stalled body
      },
      cancel() {
        cancelled.add(stream)
      },
    })
    return stream
  }

  it('resolves at the end of the body with every event', async () => {
    const out: string[] = []
    await readEventStream(body(['data:1\n', '\ndata:2\n\n']), { onMessage: (m) => out.push(m.data) })
    expect(out).toEqual(['1', '2'])
  })

  it('rejects with signal.reason and cancels the body when aborted while reading', async () => {
    const controller = new AbortController()
    const stream = body(['data:1\n\n'], true)
    const reading = readEventStream(stream, {
      onMessage: () => controller.abort(new Error('stop')),
    }, { signal: controller.signal })
    await expect(reading).rejects.toThrow('stop')
    await Promise.resolve()
    expect(cancelled.has(stream)).toBe(true)
  })

  it('rejects at once when the signal is already aborted', async () => {
    const stream = body(['data:1\n\n'])
    await expect(readEventStream(stream, { onMessage: () => {} }, { signal: AbortSignal.abort(new Error('early')) })).rejects.toThrow('early')
  })

  it('stops a body that never ends when the signal aborts (no hang)', async () => {
    const controller = new AbortController()
    const stream = body([':\n'], true)
    const reading = readEventStream(stream, { onMessage: () => {}, onChunk: () => controller.abort(new Error('later')) }, { signal: controller.signal })
    await expect(reading).rejects.toThrow('later')
  })
})
