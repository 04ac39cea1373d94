/**
 * `onTerminate()` with real signals: a soft terminate from the local server (SIGTERM), Ctrl-C on a
 * backend run by hand (SIGINT), and cleanups that fail or never settle.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { onTerminate } from '../../src/backend/index.js'
import type { BackendState, TerminatedState } from '../../src/index.js'
import { fixtureCommand, startBackendServer, tempDir } from './helpers.js'

// One local server for the file (its keys never clash), started by the first test that needs it.
let server: ReturnType<typeof startBackendServer> | undefined

/** Spawns the fixture with `key` and a mount, uses it once as `user`, terminates it softly; returns what it left. */
async function terminateOnce(env: Record<string, string>, key: string) {
  const { jamsocket, dataDir } = await (server ??= startBackendServer())
  const handle = await jamsocket.connect({ key, user: 'ada', spawn: { executable: { mount: true, env } } })
  const seen: BackendState['status'][] = []
  handle.on('status', (state) => seen.push(state.status))
  const ended = new Promise<TerminatedState>((resolve) => handle.once('terminated', (state) => resolve(state as TerminatedState)))
  await handle.waitUntilReady({ timeoutMs: 15_000 })
  expect((await fetch(`${handle.url}whoami`)).status).toBe(200)
  await jamsocket.terminate(handle.backend_id)
  const final = await ended
  handle.close()
  return { final, seen, stateFile: join(dataDir, key, 'state.json') }
}

describe('onTerminate()', () => {
  test('a soft terminate runs the cleanup on SIGTERM: the state is written before the exit, and exit_error is false', async () => {
    const { final, seen, stateFile } = await terminateOnce({}, 'save-1')
    expect(final).toMatchObject({ status: 'terminated', termination_reason: 'external', termination_kind: 'soft', exit_error: false })
    expect(seen).not.toContain('hard-terminating')
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ requests: 1, users: ['ada'], signal: 'SIGTERM' })
  })

  test('a cleanup that rejects ends the process with exit_error true, without waiting for the grace period', async () => {
    const { final, seen } = await terminateOnce({ CLEANUP: 'reject' }, 'save-2')
    expect(final).toMatchObject({ status: 'terminated', termination_kind: 'soft', exit_error: true })
    expect(seen).not.toContain('hard-terminating')
  })

  test('a cleanup that never settles ends the process at timeoutMs, before the grace period’s SIGKILL', async () => {
    // The grace period is 30 s and the test's own limit 20 s: only the cleanup's time limit can end it.
    const { final, seen } = await terminateOnce({ CLEANUP: 'hang', CLEANUP_TIMEOUT_MS: '200' }, 'save-3')
    expect(final).toMatchObject({ status: 'terminated', termination_kind: 'soft', exit_error: true })
    expect(seen).not.toContain('hard-terminating')
  })

  test('Ctrl-C (SIGINT) runs the same cleanup for a backend run by hand', async () => {
    const stateFile = join(await tempDir(), 'state.json')
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(await freePort()), HOST: '127.0.0.1', SESSION_BACKEND_ID: 'b1', SESSION_BACKEND_KEY: 'k', STATE_FILE: stateFile }
    const child = spawn(fixtureCommand[0]!, fixtureCommand.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        if (stdout.includes('listening on')) resolve()
      })
      child.on('close', () => reject(new Error(`exited before listening: ${stdout}`)))
    })
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ requests: 0, users: [], signal: 'SIGINT' })
  })

  test('registers SIGTERM and SIGINT handlers while a cleanup is registered, and gives the signals back when the last is removed', () => {
    const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }
    const offA = onTerminate(() => {})
    const offB = onTerminate(() => {})
    expect(process.listenerCount('SIGTERM')).toBe(before.term + 1)
    expect(process.listenerCount('SIGINT')).toBe(before.int + 1)
    offA()
    expect(process.listenerCount('SIGTERM')).toBe(before.term + 1)
    offB()
    offB() // twice is harmless
    expect({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }).toEqual(before)
  })

  test('a cleanup that is not a function, or a bad timeoutMs, is refused at once', () => {
    const before = process.listenerCount('SIGTERM')
    expect(() => onTerminate('save' as never)).toThrow(TypeError)
    for (const timeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(() => onTerminate(() => {}, { timeoutMs })).toThrow(RangeError)
    }
    expect(process.listenerCount('SIGTERM')).toBe(before)
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}
