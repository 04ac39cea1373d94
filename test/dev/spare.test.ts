/**
 * Spare shells (src/dev/spare.ts): a shell already in a fresh cgroup, waiting to become the next
 * backend. A backend started through one must get exactly what a backend started the usual way gets,
 * be contained as tightly, and no spare may outlive its server.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CgroupSet } from '../../src/dev/cgroup.js'
import { BackendProcess, type RunSpec } from '../../src/dev/runner.js'
import { type Spare, SpareShells } from '../../src/dev/spare.js'
import { alive, cgroupOf, connectRaw, eventually, fixture, spareShells, startServer, waitStatus } from './helpers.js'

/** Runs `spec` (through `spare` when given) to its exit; resolves with its stdout lines. */
function run(spec: RunSpec, spare?: Spare): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = []
    new BackendProcess(
      spec,
      {
        onSpawn: () => {},
        onLine: (stream, text) => (stream === 'stdout' ? lines.push(text) : undefined),
        onError: reject,
        onExit: () => resolve(lines),
      },
      spare,
    )
  })
}

/** True once the spare shell has entered its cgroup and closed the fd it says so on (it waits for a command then). */
const waiting = (pid: number) => cgroupOf(pid)?.includes('/spare-') === true && !existsSync(`/proc/${pid}/fd/3`)

describe('spare shells', () => {
  it('a backend started through a spare gets exactly what one started the usual way gets: arguments, environment, working directory, stdin at end of file, a cgroup of its own', async () => {
    const cgroups = CgroupSet.create()
    if (!(cgroups instanceof CgroupSet)) {
      // No cgroup v2 to write here: the server makes no spares (and says it has no per-backend cgroups).
      const server = await startServer('listen')
      expect(server.events.some((e) => e.type === 'message' && e.text.includes('no per-backend cgroup'))).toBe(true)
      expect(spareShells(process.pid)).toEqual([])
      return
    }
    const cwd = mkdtempSync(join(tmpdir(), "spare it's $HOME "))
    const spares = new SpareShells(cgroups, cwd)
    try {
      const spec = {
        command: process.execPath,
        args: [fixture('report'), 'a b', "it's", '$HOME', '', 'line\nbreak', '*', '-e'],
        cwd,
        env: { PATH: process.env.PATH!, QUOTED: "it's \"$HOME\" `id`", EMPTY: '', NEWLINE: 'a\nb' },
      }
      const spare = await eventually(() => spares.take(), 'a spare ready')
      const viaSpare = JSON.parse((await run({ ...spec, cgroup: spare.cgroup }, spare))[0]!)
      const cgroup = cgroups.make('plain')!
      const usual = JSON.parse((await run({ ...spec, cgroup }))[0]!)
      expect(viaSpare.argv).toEqual(spec.args.slice(1))
      expect(viaSpare.argv).toEqual(usual.argv)
      expect(viaSpare.env).toEqual(usual.env)
      expect(viaSpare.env).toEqual({ ...spec.env, PWD: cwd })
      expect(viaSpare.cwd).toBe(cwd)
      expect(usual.cwd).toBe(cwd)
      expect(viaSpare.stdinAtEof).toBe(true)
      expect(usual.stdinAtEof).toBe(true)
      expect(`/sys/fs/cgroup${viaSpare.cgroup}`.endsWith(spare.cgroup.slice(spare.cgroup.lastIndexOf('/')))).toBe(true)
      expect(viaSpare.cgroup).not.toBe(usual.cgroup)
    } finally {
      await spares.close()
      cgroups.dispose()
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  it('a backend that takes the spare runs in its cgroup with everything it starts (killed with it), and the next spare waits once it is ready', async () => {
    const server = await startServer('escape')
    if (server.events.some((e) => e.type === 'message' && e.text.includes('no per-backend cgroup'))) {
      expect(spareShells(process.pid)).toEqual([])
      return
    }
    const [spare] = await eventually(() => {
      const pids = spareShells(process.pid)
      return pids.length === 1 && waiting(pids[0]!) ? pids : undefined
    }, 'a spare waiting in its cgroup')
    const cr = await connectRaw(server, { key: 'takes-the-spare' })
    await waitStatus(server, cr.backend_id, 'ready')
    const line = await eventually(() => server.events.find((e) => e.type === 'log' && e.line.backendId === cr.backend_id && e.line.text.startsWith('escaped ')), 'the escaped pid')
    const escaped = Number((line as { line: { text: string } }).line.text.split(' ')[1])
    // The backend is the spare (same pid); the child it moved out of its process group is in its cgroup.
    expect(Number(await (await fetch(cr.url)).text())).toBe(spare)
    expect(cgroupOf(escaped)).toBe(cgroupOf(spare!))
    const [next] = await eventually(() => {
      const pids = spareShells(process.pid)
      return pids.length === 1 && waiting(pids[0]!) ? pids : undefined
    }, 'the next spare')
    expect(next).not.toBe(spare)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST' })
    await waitStatus(server, cr.backend_id, 'terminated')
    await eventually(() => !alive(escaped), 'the escaped child to be gone')
  })

  it('close() ends the waiting spare and removes its cgroup', async () => {
    const server = await startServer('listen')
    if (server.events.some((e) => e.type === 'message' && e.text.includes('no per-backend cgroup'))) {
      expect(spareShells(process.pid)).toEqual([])
      return
    }
    const [spare] = await eventually(() => {
      const pids = spareShells(process.pid)
      return pids.length === 1 && waiting(pids[0]!) ? pids : undefined
    }, 'a spare waiting in its cgroup')
    const dir = `/sys/fs/cgroup/unified${cgroupOf(spare!)}`
    await server.close()
    expect(alive(spare!)).toBe(false)
    expect(existsSync(dir)).toBe(false)
  })

  it('a spare that cannot enter its cgroup is never handed out, and no more are made', async () => {
    // A "cgroup" that is a plain directory: the shell cannot write its pid there and exits.
    const dir = mkdtempSync(join(tmpdir(), 'not-a-cgroup-'))
    let made = 0
    const fake = { make: (name: string) => (made++, join(dir, name)) } as unknown as CgroupSet
    const spares = new SpareShells(fake, dir)
    try {
      await eventually(() => spares.broken, 'the spare to give up')
      expect(spares.take()).toBeUndefined()
      spares.refill()
      expect(made).toBe(1)
      expect(spareShells(process.pid)).toEqual([])
    } finally {
      await spares.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
