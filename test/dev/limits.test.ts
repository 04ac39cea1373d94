/**
 * resource_limits on local processes: what is enforced is (file size as RLIMIT_FSIZE, memory by
 * RSS), and what is not is said in the log.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { planLimits } from '../../src/dev/limits.js'
import { connectRaw, eventually, startServer, waitStatus } from './helpers.js'

describe('resource limits', () => {
  it('wraps the command with prlimit, or with sh ulimit when prlimit is missing', () => {
    const viaPrlimit = planLimits('node', ['b.mjs'], { cpu_time_limit: 5, disk_limit_bytes: 4096 }, '/usr/bin/prlimit')
    expect([viaPrlimit.command, ...viaPrlimit.args]).toEqual(['/usr/bin/prlimit', '--cpu=5:6', '--fsize=4096:4096', '--', 'node', 'b.mjs'])
    const viaShell = planLimits('node', ['b.mjs'], { cpu_time_limit: 5, disk_limit_bytes: 4096 }, null)
    expect([viaShell.command, ...viaShell.args]).toEqual(['/bin/sh', '-c', 'ulimit -S -t 5 && ulimit -H -t 6 && ulimit -f 8 && exec "$0" "$@"', 'node', 'b.mjs'])
    expect(planLimits('node', [], undefined)).toMatchObject({ command: 'node', args: [], notes: [] })
  })

  it('enforces disk_limit_bytes as the largest file a backend can write', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-limit-'))
    try {
      const server = await startServer('listen', { dataDir })
      const cr = await connectRaw(server, { key: 'small-disk', spawn: { executable: { mount: true, resource_limits: { disk_limit_bytes: 4096 } } } })
      await waitStatus(server, cr.backend_id, 'ready')
      const response = await fetch(`${cr.url}write`).catch(() => undefined)
      // Either the write fails (EFBIG) or the process is killed by SIGXFSZ: never a 64 KiB file.
      if (response?.status === 200) throw new Error('the 64 KiB write succeeded')
      const unlimited = await connectRaw(server, { key: 'big-disk', spawn: { executable: { mount: true } } })
      await waitStatus(server, unlimited.backend_id, 'ready')
      expect(await (await fetch(`${unlimited.url}write`)).text()).toBe('written')
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it('kills a backend over memory_limit_bytes, and logs the limits it cannot enforce', async () => {
    const server = await startServer('listen', { memoryCheckIntervalMs: 20 })
    const cr = await connectRaw(server, { key: 'tiny', spawn: { executable: { resource_limits: { memory_limit_bytes: 1024 * 1024, cpu_period_percent: 50 } } } })
    const state = await waitStatus(server, cr.backend_id, 'terminated')
    expect(state).toMatchObject({ status: 'terminated', exit_error: true })
    const messages = () => server.events.flatMap((e) => (e.type === 'message' ? [e.text] : []))
    await eventually(() => messages().some((m) => m.includes('over memory_limit_bytes')), 'the memory message')
    expect(messages().some((m) => m.includes('cpu_period_percent NOT enforced'))).toBe(true)
  })

  it('ends a backend that used up cpu_time_limit with exit_error and a log line naming the limit', async () => {
    const server = await startServer('burn')
    const cr = await connectRaw(server, { key: 'spin', spawn: { executable: { resource_limits: { cpu_time_limit: 1 } } } })
    await waitStatus(server, cr.backend_id, 'ready')
    expect(await (await fetch(`${cr.url}burn-self`)).text()).toBe('burning')
    expect(await waitStatus(server, cr.backend_id, 'terminated')).toMatchObject({ status: 'terminated', exit_error: true })
    const messages = server.events.flatMap((e) => (e.type === 'message' && e.backendId === cr.backend_id ? [e.text] : []))
    expect(messages.some((m) => m.startsWith('killed:') && m.includes('cpu_time_limit'))).toBe(true)
    expect(messages.some((m) => m.includes('exited on its own'))).toBe(false)
  })

  it('counts cpu_time_limit per backend where it has a cgroup (processes it starts share it), and says per process only where not', async () => {
    const server = await startServer('burn', { memoryCheckIntervalMs: 50 })
    const cr = await connectRaw(server, { key: 'spin-children', spawn: { executable: { resource_limits: { cpu_time_limit: 1 } } } })
    await waitStatus(server, cr.backend_id, 'ready')
    const messages = () => server.events.flatMap((e) => (e.type === 'message' && e.backendId === cr.backend_id ? [e.text] : []))
    const note = messages().find((m) => m.startsWith('cpu_time_limit=1s'))!
    if (note.includes('NOT per backend')) {
      expect(note).toContain('per process only')
      return
    }
    expect(note).toContain('per backend')
    // Two children of 0.7 s each: under the per-process limit, over the backend's.
    expect(await (await fetch(`${cr.url}burn-children?n=2&ms=700`)).text()).toBe('started')
    expect(await waitStatus(server, cr.backend_id, 'terminated')).toMatchObject({ exit_error: true })
    expect(messages().some((m) => m.startsWith("killed: the backend's processes used") && m.includes('cpu_time_limit is 1 s'))).toBe(true)
  })

  it('says how memory_limit_bytes is applied without calling a watch "enforced"', () => {
    const none = planLimits('node', [], { memory_limit_bytes: 1e6 }, null, undefined)
    expect(none.notes[0]).toMatch(/watched, not enforced: the main process's RSS only/)
    const cgroup = planLimits('node', [], { memory_limit_bytes: 1e6, cpu_period_percent: 50 }, null, { controllers: new Set() })
    expect(cgroup.memoryScope).toBe('backend')
    expect(cgroup.notes[0]).toMatch(/watched, not enforced: the summed RSS of the backend's processes/)
    expect(cgroup.notes[1]).toMatch(/NOT enforced/)
    const controlled = planLimits('node', [], { memory_limit_bytes: 1e6, cpu_period_percent: 50, cpu_period: 100_000 }, null, { controllers: new Set(['cpu', 'memory']) })
    expect(controlled.cgroupFiles).toEqual({ 'memory.max': '1000000', 'memory.swap.max': '0', 'cpu.max': '50000 100000' })
    expect(controlled.memoryLimitBytes).toBeUndefined()
  })
})
