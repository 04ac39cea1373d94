/**
 * Helpers of the backend-helper tests: the local server running the fixture backend (written with
 * `session-backends/backend`, run through tsx), closed after the file; the library's client on it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { startDevServer, type DevServer, type DevServerOptions } from '../../src/dev/index.js'
import { Jamsocket } from '../../src/index.js'

export const fixtureFile = fileURLToPath(new URL('./fixtures/backend.ts', import.meta.url))
/** How to run the fixture: Node with tsx, so that it imports the helper from source. */
export const fixtureCommand = [process.execPath, '--import', 'tsx', fixtureFile]

const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()))
})

/** A fresh temporary directory, removed after the file. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sb-backend-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The local server running the fixture (closed after the file) and a client for it. */
export async function startBackendServer(options: Partial<DevServerOptions> = {}): Promise<{ dev: DevServer; jamsocket: Jamsocket; dataDir: string }> {
  const dataDir = await tempDir()
  const dev = await startDevServer({
    command: fixtureCommand,
    port: 0,
    proxyPort: 0,
    dataDir,
    graceMs: 30_000,
    startupTimeoutMs: 15_000,
    ...options,
  })
  cleanups.push(() => dev.close())
  return { dev, jamsocket: new Jamsocket({ dev: true, port: dev.port }), dataDir }
}
