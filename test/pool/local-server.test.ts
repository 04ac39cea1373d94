/**
 * The pool against the real local server: the engine's key rules (a key is held until its backend
 * is terminated, and connect meanwhile returns the terminating backend) with real processes.
 */
import { describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/index.js'
import { startServer, waitStatus } from '../dev/helpers.js'

describe('pool against the local server', () => {
  it('a connect during terminating is not handed the going backend: the pool waits for terminated and spawns anew', async () => {
    // This backend ignores SIGTERM, so it stays `terminating` until the grace period ends in SIGKILL.
    const server = await startServer('ignore-sigterm', { graceMs: 500 })
    const jamsocket = new Jamsocket({ account: '-', service: '-', token: '-', apiUrl: server.apiUrl })
    const pool = jamsocket.pool()
    try {
      const first = await (await pool.connect({ key: 'doc' })).waitUntilReady({ timeoutMs: 15_000 })
      await jamsocket.terminate(first.backend_id)
      await waitStatus(server, first.backend_id, 'terminating')

      const next = await pool.connect({ key: 'doc' })

      expect(next.backend_id).not.toBe(first.backend_id)
      expect(next.spawned).toBe(true)
      expect((await jamsocket.status(first.backend_id)).status).toBe('terminated')
      expect(pool.stats().calls).toBe(3)
    } finally {
      pool.close()
    }
  })

  it('concurrent connects for one key spawn one process', async () => {
    const server = await startServer('listen')
    const pool = new Jamsocket({ account: '-', service: '-', token: '-', apiUrl: server.apiUrl }).pool()
    try {
      const handles = await Promise.all(Array.from({ length: 20 }, () => pool.connect({ key: 'room' })))
      expect(new Set(handles.map((h) => h.backend_id)).size).toBe(1)
      await handles[0]!.waitUntilReady({ timeoutMs: 15_000 })
      const list = (await (await fetch(`${server.apiUrl}/v2/account/-/backends`)).json()) as { running_backends: unknown[] }
      expect(list.running_backends).toHaveLength(1)
      expect(pool.stats()).toMatchObject({ calls: 1, coalesced: 19 })
    } finally {
      pool.close()
    }
  })
})
