/**
 * The terminal UI prints what backends write and the keys clients choose: neither may drive the
 * terminal (escape sequences that clear the screen, move the cursor or set the window title).
 */
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { TerminalUi } from '../../src/dev/ui.js'

function capture(tty: boolean) {
  const out = new PassThrough()
  let text = ''
  out.on('data', (chunk: Buffer) => (text += chunk.toString()))
  const ui = new TerminalUi(out, tty)
  return { ui, text: () => text }
}

const line = (text: string) => ({ type: 'log' as const, key: 'k', line: { backendId: 'b1', stream: 'stdout' as const, text, time: new Date().toISOString() } })

describe('terminal UI', () => {
  it('replaces control characters in backend output, piped or on a TTY', async () => {
    for (const tty of [false, true]) {
      const { ui, text } = capture(tty)
      ui.handle(line('hello \x1b]0;pwned\x07 \x1b[2J world'))
      ui.close()
      await new Promise((r) => setImmediate(r))
      expect(text()).toContain('hello')
      expect(text()).toContain('world')
      expect(text()).not.toContain('\x1b]0;')
      expect(text()).not.toContain('\x1b[2J')
      expect(text()).not.toContain('\x07')
    }
  })

  it('prints a key with a line feed (or CR) on one line, piped or on a TTY, so it cannot fake other lines', async () => {
    const key = 'doc\n[abcdefghijklmn] status: ready\rX'
    const backend = { id: 'b1', key, status: 'scheduled' as const, createdAt: new Date().toISOString(), pid: undefined }
    for (const tty of [false, true]) {
      const { ui, text } = capture(tty)
      ui.handle({ type: 'status', backend, state: { status: 'scheduled', time: backend.createdAt } })
      ui.handle({ type: 'message', level: 'warn', text: `mount for ${key} failed`, backendId: 'b1' })
      ui.close()
      await new Promise((r) => setImmediate(r))
      const lines = text().split('\n')
      expect(lines.some((line) => line.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').startsWith('[abcdefghijklmn]'))).toBe(false)
      expect(text()).not.toContain('\r')
      expect(text()).toContain('[abcdefghijklmn] status: ready')
    }
  })
})
