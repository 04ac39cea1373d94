/**
 * The local server end to end through the library: real backend processes, `Jamsocket` in dev
 * mode, `BackendHandle` following the status stream.
 */
import { existsSync } from 'node:fs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BackendTerminatedError, Jamsocket, type BackendState } from '../../src/index.js'
import { alive, connectRaw, escapedPid, eventually, noCgroups, readSse, startServer, statuses, statusOf, waitStatus } from './helpers.js'

function client(port: number): Jamsocket {
  return new Jamsocket({ dev: true, port, retry: false })
}

async function envOf(url: string): Promise<Record<string, string>> {
  return (await (await fetch(`${url}env`)).json()) as Record<string, string>
}

describe('lifecycle', () => {
  it('goes scheduled → loading → starting → waiting → ready, then terminating → terminated on a soft terminate', async () => {
    const server = await startServer('listen')
    const jamsocket = client(server.port)
    const handle = await jamsocket.connect({ key: 'happy' })
    expect(handle.spawned).toBe(true)
    expect(handle.status).toBe('scheduled')
    const seen: BackendState[] = []
    handle.on('status', (state) => seen.push(state))
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    const terminated = new Promise<BackendState>((resolve) => handle.once('terminated', resolve))
    await jamsocket.terminate(handle.backend_id)
    const final = await terminated
    handle.close()
    expect(seen.map((s) => s.status).filter((s, i, all) => all.indexOf(s) === i)).toEqual([
      'scheduled',
      'loading',
      'starting',
      'waiting',
      'ready',
      'terminating',
      'terminated',
    ])
    expect(final).toMatchObject({ status: 'terminated', termination_reason: 'external', termination_kind: 'soft', exit_error: false })
    for (const state of seen) expect(Number.isNaN(Date.parse(state.time))).toBe(false)
  })

  it('returns the same backend for the same key (spawned false, fresh token) and another process for another key', async () => {
    const server = await startServer('listen')
    const jamsocket = client(server.port)
    const a = await jamsocket.connect({ key: 'doc-a' })
    const again = await jamsocket.connect({ key: 'doc-a' })
    const b = await jamsocket.connect({ key: 'doc-b' })
    await Promise.all([a.waitUntilReady(), b.waitUntilReady()])
    expect(again.backend_id).toBe(a.backend_id)
    expect(again.spawned).toBe(false)
    expect(again.token).not.toBe(a.token)
    expect(again.secret_token).toBe(a.secret_token)
    expect(b.backend_id).not.toBe(a.backend_id)
    const [envA, envAgain, envB] = await Promise.all([envOf(a.url), envOf(again.url), envOf(b.url)])
    expect(envAgain.pid).toBe(envA.pid)
    expect(envB.pid).not.toBe(envA.pid)
    for (const h of [a, again, b]) h.close()
  })

  it('gives the backend PORT and SESSION_BACKEND_* over the request env, and a per-key data directory for mount', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-data-'))
    try {
      const server = await startServer('listen', { dataDir })
      const jamsocket = client(server.port)
      const handle = await jamsocket.connect({
        key: 'doc/with space',
        spawn: { executable: { env: { FIXTURE_X: 'from request', PORT: '1', SESSION_BACKEND_ID: 'spoofed' }, mount: true } },
      })
      await handle.waitUntilReady()
      const env = await envOf(handle.url)
      expect(env.FIXTURE_X).toBe('from request')
      expect(env.SESSION_BACKEND_ID).toBe(handle.backend_id)
      expect(env.SESSION_BACKEND_KEY).toBe('doc/with space')
      expect(Number(env.PORT)).toBeGreaterThan(1)
      expect(Number(env.SESSION_BACKEND_FENCING_TOKEN)).toBeGreaterThan(0)
      expect(env.SESSION_BACKEND_DATA_DIR!.startsWith(dataDir)).toBe(true)
      expect(existsSync(env.SESSION_BACKEND_DATA_DIR!)).toBe(true)
      handle.close()
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('reports a backend that crashes at start as terminated with exit_error, and waitUntilReady rejects', async () => {
    const server = await startServer('crash')
    const jamsocket = client(server.port)
    const handle = await jamsocket.connect({ key: 'crash' })
    const error = await handle.waitUntilReady({ timeoutMs: 10_000 }).catch((e: unknown) => e)
    expect(BackendTerminatedError.isInstance(error)).toBe(true)
    const state = await waitStatus(server, handle.backend_id, 'terminated')
    expect(state).toMatchObject({ status: 'terminated', exit_error: true })
    expect(state).not.toHaveProperty('termination_reason')
    const info = (await (await fetch(`${server.apiUrl}/v2/backend/${handle.backend_id}`)).json()) as { statuses: Array<{ exit_code?: number }> }
    expect(info.statuses.at(-1)?.exit_code).toBe(3)
    handle.close()
  })

  it('hard-terminates a backend that never listens with reason startuptimeout', async () => {
    const server = await startServer('never-listens', { startupTimeoutMs: 300 })
    const cr = await connectRaw(server, { key: 'slow' })
    const state = await waitStatus(server, cr.backend_id, 'terminated')
    expect(state).toMatchObject({ status: 'terminated', termination_reason: 'startuptimeout', termination_kind: 'hard', exit_error: true })
    const info = (await (await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}`)).json()) as { statuses: Array<{ status: string; termination_reason?: string }> }
    expect(info.statuses.map((s) => s.status)).toContain('hard-terminating')
    expect(info.statuses.map((s) => s.status)).not.toContain('ready')
  })

  it('SIGKILLs a backend that ignores SIGTERM after the grace period (hard-terminating), with its whole process group', async () => {
    const server = await startServer('ignore-sigterm', { graceMs: 200 })
    const jamsocket = client(server.port)
    const handle = await jamsocket.connect({ key: 'stubborn' })
    await handle.waitUntilReady()
    const childLine = await eventually(() => server.events.find((e) => e.type === 'log' && e.line.text.startsWith('child ')), 'child pid line')
    const childPid = Number((childLine as { line: { text: string } }).line.text.split(' ')[1])
    expect(alive(childPid)).toBe(true)
    await jamsocket.terminate(handle.backend_id)
    const state = await waitStatus(server, handle.backend_id, 'terminated')
    expect(state).toMatchObject({ termination_reason: 'external', termination_kind: 'hard', exit_error: true })
    const info = (await (await fetch(`${server.apiUrl}/v2/backend/${handle.backend_id}`)).json()) as { statuses: Array<{ status: string }> }
    expect(info.statuses.map((s) => s.status)).toEqual(['scheduled', 'loading', 'starting', 'waiting', 'ready', 'terminating', 'hard-terminating', 'terminated'])
    await eventually(() => !alive(childPid), 'the child to be gone')
    handle.close()
  })

  it('hard-terminates at once on terminate({ hard: true })', async () => {
    const server = await startServer('listen')
    const jamsocket = client(server.port)
    const handle = await jamsocket.connect({ key: 'hard' })
    await handle.waitUntilReady()
    await jamsocket.terminate(handle.backend_id, { hard: true })
    const state = await waitStatus(server, handle.backend_id, 'terminated')
    expect(state).toMatchObject({ termination_reason: 'external', termination_kind: 'hard' })
    const info = (await (await fetch(`${server.apiUrl}/v2/backend/${handle.backend_id}`)).json()) as { statuses: Array<{ status: string }> }
    expect(info.statuses.map((s) => s.status)).not.toContain('terminating')
    handle.close()
  })

  it('sweeps an idle backend (reason swept) and spawns a new one for the key afterwards', async () => {
    const server = await startServer('listen')
    const jamsocket = client(server.port)
    const handle = await jamsocket.connect({ key: 'idle', spawn: { max_idle_seconds: 0.2 } })
    // Not waitUntilReady: on a slow machine the sweep can come before a waiter sees `ready`.
    const state = await waitStatus(server, handle.backend_id, 'terminated')
    expect(state).toMatchObject({ termination_reason: 'swept', termination_kind: 'soft' })
    const next = await jamsocket.connect({ key: 'idle' })
    expect(next.spawned).toBe(true)
    expect(next.backend_id).not.toBe(handle.backend_id)
    handle.close()
    next.close()
  })

  it('counts idle time from ready: a backend that starts slower than its idle limit is not swept while starting', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'slow-start', spawn: { max_idle_seconds: 0.1, executable: { env: { FIXTURE_DELAY_MS: '500' } } } })
    // The stream ends when the backend terminates; it holds every status it went through.
    const { events } = await readSse(`${cr.status_url}/stream`)
    const states = statuses(events)
    expect(states.at(-1)).toBe('terminated')
    expect(JSON.parse(events.filter((e) => e.data !== undefined).at(-1)!.data!)).toMatchObject({ termination_reason: 'swept' })
    expect(states).toContain('ready')
  })

  it('sweeps a backend at its lifetime limit even while it gets traffic', async () => {
    const server = await startServer('listen')
    const cr = await connectRaw(server, { key: 'short-lived', spawn: { lifetime_limit_seconds: 0.5 } })
    await waitStatus(server, cr.backend_id, 'ready')
    // Keep it busy until it ends: activity must not extend a lifetime.
    await eventually(async () => {
      await fetch(`${cr.url}busy`).catch(() => undefined)
      return (await statusOf(server, cr.backend_id)).status === 'terminated'
    }, 'the lifetime sweep')
    expect(await statusOf(server, cr.backend_id)).toMatchObject({ status: 'terminated', termination_reason: 'swept' })
  })

  it('leaves no process behind when the server closes (process table checked)', async () => {
    const server = await startServer('ignore-sigterm', { graceMs: 200 })
    const crs = await Promise.all(['p1', 'p2', 'p3'].map((key) => connectRaw(server, { key })))
    await Promise.all(crs.map((cr) => waitStatus(server, cr.backend_id, 'ready')))
    const pids = new Set<number>()
    await eventually(() => {
      for (const event of server.events) {
        if (event.type === 'status' && event.backend.pid !== undefined) pids.add(event.backend.pid)
        if (event.type === 'log' && event.line.text.startsWith('child ')) pids.add(Number(event.line.text.split(' ')[1]))
      }
      return pids.size === 6
    }, 'three backends and their children')
    for (const pid of pids) expect(alive(pid)).toBe(true)
    await server.close()
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false)
  })

  it('kills what a backend moved out of its process group (setsid) on terminate and on close(), where cgroup v2 is writable, and says so where not', async () => {
    const server = await startServer('escape')
    const escaped = async (key: string) => {
      const cr = await connectRaw(server, { key })
      await waitStatus(server, cr.backend_id, 'ready')
      return { cr, pid: await escapedPid(server, cr.backend_id) }
    }
    const noCgroup = noCgroups(server)
    const first = await escaped('escape-terminate')
    const second = await escaped('escape-close')
    expect(alive(first.pid)).toBe(true)
    await fetch(`${server.apiUrl}/v2/backend/${first.cr.backend_id}/terminate`, { method: 'POST' })
    await waitStatus(server, first.cr.backend_id, 'terminated')
    await server.close()
    if (noCgroup) {
      for (const { pid } of [first, second]) process.kill(pid, 'SIGKILL')
    } else {
      await eventually(() => !alive(first.pid), 'the first escaped child to be gone')
      expect(alive(second.pid)).toBe(false)
    }
  })
})
