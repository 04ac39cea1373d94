/**
 * A backend's output is bounded wherever the server keeps it: a `logs/stream` reader that stops
 * reading is disconnected instead of buffered for, and the output kept for replay is capped in bytes,
 * per backend and across ended backends.
 */
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { connectRaw, eventually, readSse, startServer, waitStatus } from './helpers.js'

describe('backend output', () => {
  it('disconnects a logs/stream reader that stops reading, rather than buffering what the backend prints', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'chatty' })
    await waitStatus(server, cr.backend_id, 'ready')
    const socket = connect(server.port, '127.0.0.1')
    socket.write(`GET /v2/backend/${cr.backend_id}/logs/stream HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`)
    // The headers arrive (the stream is open), then the reader stops reading.
    await new Promise((resolve) => socket.once('data', resolve))
    socket.pause()
    expect(await (await fetch(`${cr.url}print?kib=32768`)).text()).toBe('printed')
    await eventually(() => server.events.some((e) => e.type === 'log' && e.line.text === 'printed-done'), 'the output to be printed')
    // Reading again: the server dropped this reader, so the stream ends before the end of the output.
    const outcome = await new Promise<string>((resolve) => {
      let tail = ''
      socket.on('data', (chunk: Buffer) => {
        tail = (tail + chunk.toString('latin1')).slice(-64)
        if (tail.includes('printed-done')) resolve('got everything')
      })
      socket.on('close', () => resolve('closed'))
      socket.on('error', () => {})
      socket.resume()
    })
    socket.destroy()
    expect(outcome).toBe('closed')
  })

  it('keeps at most logBytes of output per backend, and endedLogBytes across ended backends', async () => {
    const server = await startServer('listen', { logBytes: 64 * 1024, endedLogBytes: 80 * 1024 })
    const a = await connectRaw(server, { key: 'a' })
    await waitStatus(server, a.backend_id, 'ready')
    await fetch(`${a.url}print?kib=1024`)
    await eventually(() => server.events.some((e) => e.type === 'log' && e.line.backendId === a.backend_id && e.line.text === 'printed-done'), 'the output of a')
    const replay = await readSse(`${server.apiUrl}/v2/backend/${a.backend_id}/logs/stream`, {}, (events) => events.some((e) => e.data === 'printed-done'))
    const bytes = replay.events.reduce((sum, e) => sum + Buffer.byteLength(e.data ?? ''), 0)
    expect(bytes).toBeLessThanOrEqual(64 * 1024)
    expect(bytes).toBeGreaterThan(32 * 1024)
    // a ends with about 48 KiB kept (three 16 KiB lines and two short ones); b's as much again pushes the total over 80 KiB: a's output goes.
    await fetch(`${server.apiUrl}/v2/backend/${a.backend_id}/terminate`, { method: 'POST' })
    await waitStatus(server, a.backend_id, 'terminated')
    const b = await connectRaw(server, { key: 'b' })
    await waitStatus(server, b.backend_id, 'ready')
    await fetch(`${b.url}print?kib=1024`)
    await eventually(() => server.events.some((e) => e.type === 'log' && e.line.backendId === b.backend_id && e.line.text === 'printed-done'), 'the output of b')
    await fetch(`${server.apiUrl}/v2/backend/${b.backend_id}/terminate`, { method: 'POST' })
    await waitStatus(server, b.backend_id, 'terminated')
    const endedA = await readSse(`${server.apiUrl}/v2/backend/${a.backend_id}/logs/stream`)
    const endedB = await readSse(`${server.apiUrl}/v2/backend/${b.backend_id}/logs/stream`)
    expect(endedA.events).toEqual([])
    expect(endedB.events.some((e) => e.data === 'printed-done')).toBe(true)
  })
})
