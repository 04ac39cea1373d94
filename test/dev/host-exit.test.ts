/**
 * Backends run in sessions of their own, so nothing ties them to the host process: however the
 * process that started the server ends (process.exit, a terminal's signal, SIGKILL), no backend
 * and nothing a backend started may outlive it, and a host with no signal handlers of its own still
 * ends on the signal.
 */
import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { alive, eventually, oneSpareShell } from './helpers.js'

const run = promisify(execFile)
const leftovers: number[] = []
afterEach(() => {
  for (const pid of leftovers.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL')
})

/** Starts the host-runs fixture and waits for the pids it prints. */
async function startHost() {
  const script = fileURLToPath(new URL('./fixtures/host-runs.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const [, backend, escaped] = await eventually(() => /PID (\d+)\nESCAPED (\d+)/.exec(output), 'the host to print its backend', 20_000)
  const pids = [Number(backend), Number(escaped)]
  leftovers.push(...pids)
  // With cgroups, a spare shell waits for the next backend (src/dev/spare.ts): it must not outlive the host either.
  const spare = output.includes('no per-backend cgroup') ? [] : [await eventually(() => oneSpareShell(child.pid!), 'the spare shell')]
  leftovers.push(...spare)
  return { child, exit, pids, spare, output: () => output }
}

describe('host process exit', () => {
  it('a host that exits without close() leaves no backend process behind', async () => {
    const script = fileURLToPath(new URL('./fixtures/host-exits.ts', import.meta.url))
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { timeout: 30_000 })
    const pid = Number(/PID (\d+)/.exec(stdout)?.[1])
    expect(pid).toBeGreaterThan(0)
    await eventually(() => !alive(pid), `backend ${pid} to be gone`)
  })

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`a host with no handlers of its own ends on ${signal} after terminating its backends, and nothing they started survives`, async () => {
      const host = await startHost()
      for (const pid of host.pids) expect(alive(pid)).toBe(true)
      host.child.kill(signal)
      expect(await host.exit).toEqual({ code: null, signal })
      expect(alive(host.pids[0]!)).toBe(false)
      // Moved out of its group: only a cgroup reaches it; without one the server says so.
      if (host.output().includes('no per-backend cgroup')) expect(alive(host.pids[1]!)).toBe(true)
      else await eventually(() => !alive(host.pids[1]!), 'the escaped child to be gone')
      for (const pid of host.spare) await eventually(() => !alive(pid), 'the spare shell to be gone')
    })
  }

  it('a host killed with SIGKILL leaves no backend behind (the watchdog reaps them)', async () => {
    const host = await startHost()
    host.child.kill('SIGKILL')
    await host.exit
    await eventually(() => !alive(host.pids[0]!), 'the backend to be gone')
    if (!host.output().includes('no per-backend cgroup')) await eventually(() => !alive(host.pids[1]!), 'the escaped child to be gone')
    for (const pid of host.spare) await eventually(() => !alive(pid), 'the spare shell to be gone')
  })
})
