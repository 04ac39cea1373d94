/**
 * `new JamsocketBackend()`: what the local server gives a real backend, and a typed error naming the
 * variable when one is missing or malformed (also in a real process started without it).
 */
import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { inspect } from 'node:util'
import { describe, expect, test } from 'vitest'
import { BackendEnvError, JamsocketBackend } from '../../src/backend/index.js'
import { fixtureCommand, startBackendServer } from './helpers.js'

const base = { PORT: '8080', SESSION_BACKEND_ID: 'b1', SESSION_BACKEND_KEY: 'doc-42', SESSION_BACKEND_FENCING_TOKEN: '1700000000000' }

function envError(env: Record<string, string | undefined>): BackendEnvError {
  try {
    new JamsocketBackend({ env })
  } catch (error) {
    expect(BackendEnvError.isInstance(error)).toBe(true)
    return error as BackendEnvError
  }
  throw new Error('expected a BackendEnvError')
}

describe('JamsocketBackend', () => {
  test('a backend started by the local server gets PORT, HOST (its loopback), its id, key, fencing token and data directory', async () => {
    const { jamsocket, dataDir } = await startBackendServer()
    const handle = await jamsocket.connect({ key: 'env/1', spawn: { executable: { mount: true } } })
    await handle.waitUntilReady({ timeoutMs: 15_000 })
    const env = (await (await fetch(`${handle.url}env`)).json()) as Record<string, unknown>
    expect(env).toMatchObject({ host: '127.0.0.1', backendId: handle.backend_id, key: 'env/1', staticToken: null })
    expect(env.port).toEqual(expect.any(Number))
    expect(env.fencingToken).toEqual(expect.any(Number))
    expect(String(env.dataDir).startsWith(dataDir)).toBe(true)
    expect((await stat(String(env.dataDir))).isDirectory()).toBe(true)
    handle.close()
  })

  test('reads PORT, HOST and the SESSION_BACKEND_* variables', () => {
    const backend = new JamsocketBackend({ env: { ...base, HOST: '127.0.0.1', SESSION_BACKEND_STATIC_TOKEN: 's.abc', SESSION_BACKEND_DATA_DIR: '/data/doc-42' } })
    expect({ ...backend, staticToken: backend.staticToken }).toEqual({
      port: 8080,
      host: '127.0.0.1',
      backendId: 'b1',
      key: 'doc-42',
      fencingToken: 1_700_000_000_000,
      dataDir: '/data/doc-42',
      staticToken: 's.abc',
    })
  })

  test('without HOST the host is undefined (every interface, as a container needs); the optional ones are null', () => {
    const backend = new JamsocketBackend({ env: { PORT: '3000', SESSION_BACKEND_ID: 'b1', SESSION_BACKEND_KEY: 'k', HOST: '' } })
    expect(backend.host).toBeUndefined()
    expect(backend.fencingToken).toBeNull()
    expect(backend.staticToken).toBeNull()
    expect(backend.dataDir).toBeNull()
  })

  test('each missing required variable is named in a BackendEnvError (empty counts as missing)', () => {
    for (const name of ['PORT', 'SESSION_BACKEND_ID', 'SESSION_BACKEND_KEY'] as const) {
      for (const value of [undefined, '']) {
        const error = envError({ ...base, [name]: value })
        expect(error.variable).toBe(name)
        expect(error.message).toContain(`${name} is not set`)
      }
    }
  })

  test('a PORT that is not a port number, or a fencing token that is not a whole number, is a BackendEnvError', () => {
    for (const port of ['abc', '0', '65536', '80.5', '-1', ' 80', '0x50', '1e3']) {
      expect(envError({ ...base, PORT: port }).variable, port).toBe('PORT')
    }
    for (const token of ['soon', '1.5', '-3', '99999999999999999']) {
      expect(envError({ ...base, SESSION_BACKEND_FENCING_TOKEN: token }).variable, token).toBe('SESSION_BACKEND_FENCING_TOKEN')
    }
  })

  test('the static token stays out of inspect and JSON output, and out of errors', () => {
    const backend = new JamsocketBackend({ env: { ...base, SESSION_BACKEND_STATIC_TOKEN: 's.very-secret' } })
    expect(inspect(backend)).not.toContain('very-secret')
    expect(JSON.stringify(backend)).not.toContain('very-secret')
    expect(envError({ ...base, PORT: 'x', SESSION_BACKEND_STATIC_TOKEN: 's.very-secret' }).message).not.toContain('very-secret')
  })

  test('assignment() has @jamsocket/session-backend’s shape: its env without the SESSION_BACKEND_* variables, and ready()', async () => {
    const env = { ...base, SESSION_BACKEND_STATIC_TOKEN: 's.abc', SESSION_BACKEND_DATA_DIR: '/d', OTHER: 'x' }
    const assignment = await new JamsocketBackend({ env }).assignment()
    expect(assignment).toMatchObject({ backendId: 'b1', key: 'doc-42', fencingToken: 1_700_000_000_000, isReady: false })
    expect(assignment.staticToken).toBe('s.abc')
    expect(assignment.env).toEqual({ PORT: '8080', OTHER: 'x' })
    assignment.ready()
    expect(assignment.isReady).toBe(true)
    expect(inspect(assignment)).not.toContain('s.abc')
  })

  test('a backend process started without PORT exits at once with the error naming it', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, SESSION_BACKEND_ID: 'b1', SESSION_BACKEND_KEY: 'k' }
    const child = spawn(fixtureCommand[0]!, fixtureCommand.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise((resolve) => child.on('close', resolve))
    expect(code).not.toBe(0)
    expect(stderr).toContain('BackendEnvError')
    expect(stderr).toContain('PORT is not set')
  })
})
