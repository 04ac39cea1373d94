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
    expect([viaPrlimit.command, ...viaPrlimit.args]).toEqual(['/usr/bin/prlimit', '--cpu=5:5', '--fsize=4096:4096', '--', 'node', 'b.mjs'])
    const viaShell = planLimits('node', ['b.mjs'], { cpu_time_limit: 5, disk_limit_bytes: 4096 }, null)
    expect([viaShell.command, ...viaShell.args]).toEqual(['/bin/sh', '-c', 'ulimit -t 5 && ulimit -f 8 && exec "$0" "$@"', 'node', 'b.mjs'])
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
})
