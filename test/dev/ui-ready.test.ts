/**
 * The terminal table's "ready in" column: scheduled to ready on the server's clock, and a backend
 * much slower than the others shown in red.
 */
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { DevEvent } from '../../src/dev/registry.js'
import { TerminalUi } from '../../src/dev/ui.js'
import type { BackendStatus } from '../../src/wire.js'

const T0 = Date.parse('2024-08-15T14:00:00.000Z')

function status(id: string, value: BackendStatus, ms: number): DevEvent {
  const createdAt = new Date(T0).toISOString()
  return { type: 'status', backend: { id, key: `key-${id}`, status: value, createdAt, pid: undefined }, state: { status: value, time: new Date(T0 + ms).toISOString() } as never }
}

/** The last table drawn: the lines after the last header line. */
function lastTable(text: string): string[] {
  const lines = text.split('\n')
  let header = lines.length - 1
  while (header > 0 && !lines[header]!.includes('ready in')) header--
  return lines.slice(header, header + 5)
}

describe('terminal UI: the "ready in" column', () => {
  it('shows scheduled → ready from the server times, and a backend much slower than the others in red', async () => {
    const out = new PassThrough()
    let text = ''
    out.on('data', (chunk: Buffer) => (text += chunk.toString()))
    const ui = new TerminalUi(out, true)
    const readyAfter: Record<string, number> = { b1: 420, b2: 380, b3: 450, b4: 2_600 }
    for (const [id, ms] of Object.entries(readyAfter)) {
      ui.handle(status(id, 'scheduled', 0))
      ui.handle(status(id, 'ready', ms))
    }
    ui.handle(status('b5', 'scheduled', 0))
    ui.close()
    await new Promise((r) => setImmediate(r))
    const table = lastTable(text)
    expect(table[0]).toMatch(/status\s+ready in\s+age/)
    const rowOf = (id: string) => table.find((l) => l.includes(id)) ?? ''
    expect(rowOf('b1')).toContain('420ms')
    expect(rowOf('b2')).toContain('380ms')
    expect(rowOf('b4')).toContain('\x1b[1;31m2.60s')
    expect(rowOf('b1')).not.toContain('\x1b[1;31m')
    expect(rowOf('b3')).not.toContain('\x1b[1;31m')
  })
})
