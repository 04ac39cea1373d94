/**
 * Backends run in their own process groups, so nothing ties them to the host process: the server
 * must kill them when the process that started it exits without calling close().
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { alive, eventually } from './helpers.js'

const run = promisify(execFile)

describe('host process exit', () => {
  it('a host that exits without close() leaves no backend process behind', async () => {
    const script = fileURLToPath(new URL('./fixtures/host-exits.ts', import.meta.url))
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { timeout: 30_000 })
    const pid = Number(/PID (\d+)/.exec(stdout)?.[1])
    expect(pid).toBeGreaterThan(0)
    await eventually(() => !alive(pid), `backend ${pid} to be gone`)
  })
})
