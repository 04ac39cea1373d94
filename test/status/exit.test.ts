import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { frame, startSseServer, stateOf, type SseServer } from '../helpers/sse-server.js'

const child = fileURLToPath(new URL('./fixtures/follow-child.ts', import.meta.url))
const LIFE = ['scheduled', 'loading', 'ready', 'terminating', 'terminated'] as const

let server: SseServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

/** Runs the child and resolves with its exit code and output; kills it (failing) if it hangs. */
function runChild(statusUrl: string, mode: string, stderr?: { text: string }, entry = 'status'): Promise<{ code: number | null; out: string; hung: boolean }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, statusUrl, mode, entry], { stdio: ['ignore', 'pipe', stderr ? 'pipe' : 'inherit'] })
    let out = ''
    let hung = false
    proc.stdout!.on('data', (d) => (out += String(d)))
    proc.stderr?.on('data', (d) => (stderr!.text += String(d)))
    const timer = setTimeout(() => {
      hung = true
      proc.kill('SIGKILL')
    }, 15_000)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out, hung })
    })
  })
}

describe('nothing keeps the process alive', () => {
  // The server never closes the stream (Plane style) and sends keep-alive comments: only the
  // client can end it.
  async function planeServer(states: readonly string[]): Promise<SseServer> {
    return startSseServer(async (c) => {
      await c.write(states.map((s, i) => frame(stateOf(s as never, i))).join(''))
      const keepAlive = setInterval(() => void c.write(':\n\n'), 20)
      await c.gone
      clearInterval(keepAlive)
    })
  }

  it('after terminated', async () => {
    server = await planeServer(LIFE)
    const result = await runChild(server.connectResponse('x').status_url, 'terminated')
    expect(result).toEqual({ code: 0, out: 'terminated terminated\n', hung: false })
  })

  it('a listener that throws does not end the process (Node has no reportError): reported on stderr, following goes on', async () => {
    server = await planeServer(LIFE)
    const stderr = { text: '' }
    const result = await runChild(server.connectResponse('x').status_url, 'throwing', stderr)
    expect(result).toEqual({ code: 0, out: 'terminated terminated\n', hung: false })
    expect(stderr.text).toContain('a BackendHandle listener threw')
    expect(stderr.text).toContain('listener bug at ready')
  })

  it('after close()', async () => {
    server = await planeServer(LIFE.slice(0, 3))
    const result = await runChild(server.connectResponse('x').status_url, 'close')
    expect(result).toEqual({ code: 0, out: 'ready, closing\n', hung: false })
  })

  it('after waitUntilReady() resolved with nobody else listening', async () => {
    server = await planeServer(LIFE.slice(0, 3))
    const result = await runChild(server.connectResponse('x').status_url, 'wait')
    expect(result).toEqual({ code: 0, out: 'ready, done waiting\n', hung: false })
  })

  // The same, for a handle from the main entry: on Node it follows over node:http.
  const cases: Array<[string, readonly string[], string]> = [
    ['terminated', LIFE, 'terminated terminated\n'],
    ['close', LIFE.slice(0, 3), 'ready, closing\n'],
    ['wait', LIFE.slice(0, 3), 'ready, done waiting\n'],
  ]
  for (const [mode, states, out] of cases) {
    it(`over the node:http transport too (new BackendHandle() from session-backends): ${mode}`, async () => {
      server = await planeServer(states)
      const result = await runChild(server.connectResponse('x').status_url, mode, undefined, 'main')
      expect(result).toEqual({ code: 0, out, hung: false })
      expect(server.requests[0]!.secFetchMode).toBeUndefined() // it was node:http, not fetch
    })
  }
})
