/**
 * Data directories (`spawn.executable.mount`): one key's directory is never another's, and no
 * mount reaches outside the data directory, by `.`, `..` or a symlink.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { keySegment } from '../../src/dev/mount.js'
import { connectRaw, eventually, startServer, waitStatus } from './helpers.js'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

async function dataDirOf(url: string): Promise<string> {
  return ((await (await fetch(`${url}env`)).json()) as { SESSION_BACKEND_DATA_DIR: string }).SESSION_BACKEND_DATA_DIR
}

describe('mount directories', () => {
  it('gives different keys different directories (€ and " ac" used to share %20ac), each one safe path segment', () => {
    const pairs: Array<[string, string]> = [
      ['€', ' ac'],
      ['A', 'a'],
      ['.', '%2E'],
      ['..', '.'],
      ['a'.repeat(300), `${'a'.repeat(299)}b`],
    ]
    for (const [a, b] of pairs) expect(keySegment(a), `${a} / ${b}`).not.toBe(keySegment(b))
    fc.assert(
      // Keys are non-empty, well-formed strings (the API refuses the rest).
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), (a, b) => {
        fc.pre(a !== b && !/[\uD800-\uDFFF]/.test(b))
        const [sa, sb] = [keySegment(a), keySegment(b)]
        expect(sa).not.toBe(sb)
        // Case-insensitive file systems: names must differ beyond case too.
        expect(sa.toLowerCase()).not.toBe(sb.toLowerCase())
        for (const s of [sa, sb]) {
          expect(s).not.toMatch(/[/\\\0]/)
          expect(['', '.', '..']).not.toContain(s)
          expect(Buffer.byteLength(s)).toBeLessThanOrEqual(255)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('refuses a key that is not well-formed UTF-16 (a lone surrogate), which has no UTF-8 form of its own', async () => {
    const server = await startServer('listen')
    const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: '{"key":"doc-\\ud800"}' })
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('key')
  })

  it('runs the backends of € and " ac" in different data directories', async () => {
    const dataDir = tempDir('sb-mount-')
    const server = await startServer('listen', { dataDir })
    const [a, b] = await Promise.all(['€', ' ac'].map((key) => connectRaw(server, { key, spawn: { executable: { mount: true } } })))
    await Promise.all([a, b].map((cr) => waitStatus(server, cr!.backend_id, 'ready')))
    expect(await dataDirOf(a!.url)).not.toBe(await dataDirOf(b!.url))
  })

  it("refuses mount '.' and paths that leave the data directory with 400", async () => {
    const server = await startServer('listen', { dataDir: tempDir('sb-mount-') })
    for (const mount of ['.', './', 'a/..', '../x', '/etc']) {
      const response = await fetch(`${server.apiUrl}/v2/service/a/s/connect`, { method: 'POST', body: JSON.stringify({ key: 'm', spawn: { executable: { mount } } }) })
      expect(response.status, mount).toBe(400)
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain('mount')
    }
  })

  it('refuses a mount that leaves the data directory through a symlink, creating nothing outside', async () => {
    const dataDir = tempDir('sb-mount-')
    const outside = tempDir('sb-outside-')
    symlinkSync(outside, join(dataDir, 'link'))
    mkdirSync(join(dataDir, 'inside'))
    const server = await startServer('listen', { dataDir })
    for (const mount of ['link', 'link/sub']) {
      const cr = await connectRaw(server, { key: `sym-${mount}`, spawn: { executable: { mount } } })
      expect(await waitStatus(server, cr.backend_id, 'terminated')).toMatchObject({ termination_reason: 'internalerror' })
      await eventually(() => server.events.some((e) => e.type === 'message' && e.backendId === cr.backend_id && e.text.includes('leaves the data directory')), 'the message')
    }
    expect(readdirSync(outside)).toEqual([])
    const ok = await connectRaw(server, { key: 'fine', spawn: { executable: { mount: 'inside/sub' } } })
    await waitStatus(server, ok.backend_id, 'ready')
    expect(await dataDirOf(ok.url)).toBe(join(dataDir, 'inside', 'sub'))
    expect(existsSync(join(dataDir, 'inside', 'sub'))).toBe(true)
  })
})
