/**
 * The proxy's minimal HTTP/1.1: where heads end, what a head says, and where a body ends however the
 * bytes are split across reads (the proxy never sees a message in one piece it can rely on).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BodyFramer, bodyFraming, FramingError, HeadError, hasToken, headEnd, parseHead, responseHasBody } from '../../src/dev/http1.js'

const b = (text: string) => Buffer.from(text, 'latin1')

/** Feeds `bytes` to a framer in the given pieces; returns the offset (in `bytes`) where the body ended, or -1. */
function frameInPieces(framer: BodyFramer, bytes: Buffer, cuts: number[]): number {
  const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((x, y) => x - y)
  let offset = 0
  for (const point of [...points, bytes.length]) {
    if (point <= offset) continue
    const end = framer.feed(bytes.subarray(offset, point), 0)
    if (end !== -1) return offset + end
    offset = point
  }
  return -1
}

describe('http1 heads', () => {
  it('finds the end of a head split anywhere, and refuses heads over the cap with 431', () => {
    const head = b('GET /a HTTP/1.1\r\nHost: x\r\n\r\nBODY')
    for (let cut = 0; cut <= head.length; cut++) {
      // Searching a prefix, then the whole buffer from where the last search stopped.
      const first = headEnd(head.subarray(0, cut), 0, 0, 1024)
      expect(first === -1 ? headEnd(head, 0, cut, 1024) : first).toBe(head.length - 4)
    }
    expect(() => headEnd(b(`GET / HTTP/1.1\r\nX: ${'a'.repeat(100)}`), 0, 0, 64)).toThrow(expect.objectContaining({ status: 431 }))
    expect(() => headEnd(b(`GET / HTTP/1.1\r\nX: ${'a'.repeat(100)}\r\n\r\n`), 0, 0, 64)).toThrow(HeadError)
  })

  it('parses a request line and raw header pairs, trimming optional whitespace', () => {
    const head = parseHead('POST /t/x?y=1 HTTP/1.1\r\nHost: a:1\r\nX-Two:  v w \t\r\nEmpty:\r\n\r\n', 'request')
    expect(head).toEqual({ first: 'POST', second: '/t/x?y=1', third: 'HTTP/1.1', headers: ['Host', 'a:1', 'X-Two', 'v w', 'Empty', ''] })
    expect(parseHead('HTTP/1.1 204 No Content\r\n\r\n', 'response')).toEqual({ first: 'HTTP/1.1', second: '204', third: 'No Content', headers: [] })
    expect(parseHead('HTTP/1.1 200\r\nA: b\r\n\r\n', 'response')).toMatchObject({ second: '200', third: '' })
  })

  it('answers malformed request heads with 400', () => {
    for (const text of [
      'GET /\r\n\r\n',
      'GET / HTTP/2.0\r\n\r\n',
      'GET  / HTTP/1.1\r\n\r\n',
      'G(T / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nNo colon\r\n\r\n',
      'GET / HTTP/1.1\r\nBad Name: x\r\n\r\n',
      'GET / HTTP/1.1\r\nA: x\r\n folded\r\n\r\n',
      'GET / HTTP/1.1\r\nA: x\ny\r\n\r\n',
      'GET / HTTP/1.1\r\n: x\r\n\r\n',
    ]) {
      expect(() => parseHead(text, 'request'), JSON.stringify(text)).toThrow(expect.objectContaining({ status: 400 }))
    }
    expect(() => parseHead('HTTP/1.1 20 OK\r\n\r\n', 'response')).toThrow(HeadError)
    expect(() => parseHead('ICY 200 OK\r\n\r\n', 'response')).toThrow(HeadError)
  })

  it('reads connection options as comma-separated tokens', () => {
    expect(hasToken('Upgrade', 'upgrade')).toBe(true)
    expect(hasToken('keep-alive, Upgrade', 'upgrade')).toBe(true)
    expect(hasToken('upgrades', 'upgrade')).toBe(false)
  })
})

describe('http1 body framing', () => {
  it('frames requests by Content-Length or chunked, and refuses ambiguous ones (smuggling) with 400', () => {
    expect(bodyFraming(['Content-Length', '5'], 'request')).toEqual(['length', 5])
    expect(bodyFraming(['content-length', '0'], 'request')).toEqual(['none', 0])
    expect(bodyFraming([], 'request')).toEqual(['none', 0])
    expect(bodyFraming(['Transfer-Encoding', 'gzip, chunked'], 'request')).toEqual(['chunked', 0])
    expect(bodyFraming(['Content-Length', '5', 'Content-Length', '5'], 'request')).toEqual(['length', 5])
    for (const headers of [
      ['Content-Length', '5', 'Transfer-Encoding', 'chunked'],
      ['Content-Length', '5', 'Content-Length', '6'],
      ['Content-Length', '-1'],
      ['Content-Length', '1e3'],
      ['Transfer-Encoding', 'gzip'],
    ]) {
      expect(() => bodyFraming(headers, 'request'), headers.join()).toThrow(expect.objectContaining({ status: 400 }))
    }
  })

  it('frames responses: no body for HEAD, 1xx, 204 and 304; close-delimited without a length', () => {
    expect(responseHasBody('HEAD', 200)).toBe(false)
    expect(responseHasBody('GET', 204)).toBe(false)
    expect(responseHasBody('GET', 304)).toBe(false)
    expect(responseHasBody('GET', 100)).toBe(false)
    expect(responseHasBody('GET', 200)).toBe(true)
    expect(bodyFraming([], 'response')).toEqual(['close', 0])
    expect(bodyFraming(['Transfer-Encoding', 'gzip'], 'response')).toEqual(['close', 0])
    const close = new BodyFramer('close')
    expect(close.feed(b('anything'), 0)).toBe(-1)
    expect(close.done).toBe(false)
    expect(new BodyFramer('none').feed(b('next'), 0)).toBe(0)
  })

  it('ends a Content-Length body at its last byte however it is split, leaving what follows', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 20 }), fc.array(fc.nat(320), { maxLength: 6 }), (body, after, cuts) => {
        const bytes = Buffer.concat([Buffer.from(body), Buffer.from(after)])
        const framer = new BodyFramer(body.length === 0 ? 'none' : 'length', body.length)
        const end = body.length === 0 ? framer.feed(bytes, 0) : frameInPieces(framer, bytes, cuts)
        expect(end).toBe(body.length)
        expect(framer.done).toBe(true)
      }),
    )
  })

  it('ends a chunked body (extensions, trailers) at its last byte when split at every offset', () => {
    const body = b('4;ext=1\r\nWiki\r\n0A\r\n0123456789\r\n0\r\nTrailer: yes\r\nMore: x\r\n\r\n')
    const next = b('GET /next HTTP/1.1\r\n\r\n')
    const bytes = Buffer.concat([body, next])
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (const second of [cut, cut + 3, cut + 17]) {
        expect(frameInPieces(new BodyFramer('chunked'), bytes, [cut, second])).toBe(body.length)
      }
    }
  })

  it('ends any chunked body however it is split (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 5 }),
        fc.boolean(),
        fc.array(fc.nat(300), { maxLength: 8 }),
        (chunks, trailer, cuts) => {
          const parts = chunks.map((c) => Buffer.concat([b(`${c.length.toString(16)}\r\n`), Buffer.from(c), b('\r\n')]))
          const body = Buffer.concat([...parts, b(trailer ? '0\r\nX-T: 1\r\n\r\n' : '0\r\n\r\n')])
          const bytes = Buffer.concat([body, b('HTTP/1.1 200 OK\r\n')])
          expect(frameInPieces(new BodyFramer('chunked'), bytes, cuts)).toBe(body.length)
        },
      ),
    )
  })

  it('refuses a bare LF where the chunked body ends or a trailer line ends (no second request hidden as a trailer)', () => {
    const hidden = 'GET /smuggled HTTP/1.1\r\nHost: x\r\nx-verified-username: mallory\r\n\r\n'
    for (const text of [`0\r\n\n${hidden}`, `0\r\nx-sum: 3\n\r\n`, `0\r\nx-sum: 3\r\n\n${hidden}`]) {
      expect(() => new BodyFramer('chunked').feed(b(text), 0), JSON.stringify(text)).toThrow(FramingError)
    }
    const good = '0\r\nx-sum: 3\r\n\r\n'
    expect(new BodyFramer('chunked').feed(b(good), 0)).toBe(good.length)
  })

  it('refuses malformed chunk framing', () => {
    for (const text of ['x\r\n', '5\r\nabcdeXY', '5\nabcde\r\n', '\r\n', 'fffffffffffff\r\n', '0\r\n\r\X']) {
      expect(() => new BodyFramer('chunked').feed(b(text), 0), JSON.stringify(text)).toThrow(FramingError)
    }
  })
})
