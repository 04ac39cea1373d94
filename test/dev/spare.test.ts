/**
 * Spare shells (src/dev/spare.ts): a shell already in a fresh cgroup, waiting to become the next
 * backend. A backend started through one must get exactly what a backend started the usual way gets,
 * be contained as tightly, and no spare may outlive its server.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CgroupSet } from '../../src/dev/cgroup.js'
import { BackendProcess, spareFits, type RunSpec } from '../../src/dev/runner.js'
import { type Spare, SpareShells } from '../../src/dev/spare.js'
import { alive, cgroupDirOf, connectRaw, escapedPid, eventually, fixture, noCgroups, oneSpareShell, spareShells, startServer, waitStatus } from './helpers.js'

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

/** The pid of the one spare shell of this process's server once it waits for a command (in its cgroup, fd 3 closed). */
function waitingSpare(what: string): Promise<number> {
  return eventually(() => {
    const pid = oneSpareShell(process.pid)
    return pid !== undefined && cgroupDirOf(pid)?.includes('/spare-') && !existsSync(`/proc/${pid}/fd/3`) ? pid : undefined
  }, what)
}

describe('spare shells', () => {
  it('a backend started through a spare gets exactly what one started the usual way gets: arguments, environment, working directory (relative or through a symlink), stdin at end of file, a cgroup of its own', async () => {
    const cgroups = CgroupSet.create()
    if (!(cgroups instanceof CgroupSet)) {
      // No cgroup v2 to write here: the server makes no spares (and says it has no per-backend cgroups).
      const server = await startServer('listen')
      expect(noCgroups(server)).toBe(true)
      expect(spareShells(process.pid)).toEqual([])
      return
    }
    const base = mkdtempSync(join(tmpdir(), "spare it's $HOME "))
    const real = join(base, 'real dir')
    mkdirSync(real)
    symlinkSync(real, join(base, 'link'))
    try {
      for (const cwd of [relative(process.cwd(), real), join(base, 'link')]) {
        const spares = new SpareShells(cgroups, cwd)
        try {
          const spec = {
            command: process.execPath,
            args: [fixture('report'), 'a b', "it's", '$HOME', '', 'line\nbreak', '*', '-e'],
            cwd,
            env: { PATH: process.env.PATH!, QUOTED: "it's \"$HOME\" `id` \\n", EMPTY: '', NEWLINE: 'a\nb' },
          }
          const spare = await eventually(() => spares.take(), 'a spare ready')
          const viaSpare = JSON.parse((await run({ ...spec, cgroup: spare.cgroup }, spare))[0]!)
          const cgroup = cgroups.make(`plain-${Math.random().toString(36).slice(2)}`)!
          const usual = JSON.parse((await run({ ...spec, cgroup }))[0]!)
          expect(viaSpare.argv).toEqual(spec.args.slice(1))
          expect(viaSpare.argv).toEqual(usual.argv)
          expect(viaSpare.env).toEqual(usual.env)
          expect(viaSpare.env).toEqual({ ...spec.env, PWD: real })
          expect(viaSpare.cwd).toBe(real)
          expect(usual.cwd).toBe(real)
          expect(viaSpare.stdinAtEof).toBe(true)
          expect(usual.stdinAtEof).toBe(true)
          expect(viaSpare.cgroup.endsWith(spare.cgroup.slice(spare.cgroup.lastIndexOf('/')))).toBe(true)
          expect(usual.cgroup.endsWith(cgroup.slice(cgroup.lastIndexOf('/')))).toBe(true)
        } finally {
          await spares.close()
        }
      }
    } finally {
      cgroups.dispose()
      rmSync(base, { recursive: true, force: true })
    }
  })

  it('a request that sets a variable a shell sets itself (PWD, PPID, OPTIND, IFS, UID, …) is started the usual way, not through a spare', () => {
    const spec = { command: process.execPath, args: [], cwd: process.cwd(), env: { PATH: process.env.PATH! } }
    expect(spareFits(spec)).toBe(true)
    for (const name of ['PWD', 'OLDPWD', 'PPID', 'OPTIND', 'IFS', 'SHLVL', 'UID', 'EUID', 'BASH_ENV', 'ENV']) {
      expect(spareFits({ ...spec, env: { ...spec.env, [name]: 'x' } }), name).toBe(false)
    }
    // A missing command stays spawn's own ENOENT (the usual way), not a shell's exit 127.
    expect(spareFits({ ...spec, command: 'no-such-command-here' })).toBe(false)
  })

  it('a backend that takes the spare runs in its cgroup with everything it starts (killed with it), and the next spare waits once it is ready', async () => {
    const server = await startServer('escape')
    if (noCgroups(server)) return void expect(spareShells(process.pid)).toEqual([])
    const spare = await waitingSpare('a spare waiting in its cgroup')
    const cr = await connectRaw(server, { key: 'takes-the-spare' })
    await waitStatus(server, cr.backend_id, 'ready')
    const escaped = await escapedPid(server, cr.backend_id)
    // The backend is the spare (same pid); the child it moved out of its process group is in its cgroup.
    expect(Number(await (await fetch(cr.url)).text())).toBe(spare)
    expect(cgroupDirOf(escaped)).toBe(cgroupDirOf(spare))
    expect(await waitingSpare('the next spare')).not.toBe(spare)
    await fetch(`${server.apiUrl}/v2/backend/${cr.backend_id}/terminate`, { method: 'POST' })
    await waitStatus(server, cr.backend_id, 'terminated')
    await eventually(() => !alive(escaped), 'the escaped child to be gone')
  })

  it('close() ends the waiting spare and removes its cgroup', async () => {
    const server = await startServer('listen')
    if (noCgroups(server)) return void expect(spareShells(process.pid)).toEqual([])
    const spare = await waitingSpare('a spare waiting in its cgroup')
    const dir = cgroupDirOf(spare)!
    expect(existsSync(dir)).toBe(true)
    await server.close()
    expect(alive(spare)).toBe(false)
    expect(existsSync(dir)).toBe(false)
  })

  it('a spare is handed out only once it is in its cgroup', async () => {
    // A stand-in cgroup whose cgroup.procs is a FIFO: the shell's write waits until it is read.
    const dir = mkdtempSync(join(tmpdir(), 'fifo-cgroup-'))
    const cgroup = join(dir, 'spare')
    mkdirSync(cgroup)
    execFileSync('mkfifo', [join(cgroup, 'cgroup.procs')])
    const fake = { make: () => cgroup } as unknown as CgroupSet
    const spares = new SpareShells(fake, dir)
    let shellPid: number | undefined
    try {
      const shell = await eventually(() => oneSpareShell(process.pid), 'the spare shell')
      shellPid = shell
      expect(spares.take()).toBeUndefined()
      // The shell writes its pid as it enters: read it, and the spare is ready.
      const fifo = openSync(join(cgroup, 'cgroup.procs'), 'r')
      const buffer = Buffer.alloc(32)
      const read = readSync(fifo, buffer)
      closeSync(fifo)
      expect(Number(buffer.subarray(0, read).toString().trim())).toBe(shell)
      const spare = await eventually(() => spares.take(), 'the spare to be handed out')
      expect(spare.child.pid).toBe(shell)
      await spare.discard()
    } finally {
      await spares.close()
      // A shell still blocked opening the FIFO reads no end-of-file: if the test failed before the
      // FIFO was read, end it here rather than leave it behind.
      if (shellPid !== undefined && alive(shellPid)) process.kill(shellPid, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a spare that cannot enter its cgroup is never handed out, and no more are made', async () => {
    // A "cgroup" directory that does not exist: the shell cannot write its pid there and exits.
    const dir = mkdtempSync(join(tmpdir(), 'not-a-cgroup-'))
    let made = 0
    const fake = { make: (name: string) => (made++, join(dir, 'missing', name)) } as unknown as CgroupSet
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
