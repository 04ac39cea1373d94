/**
 * Per-backend cgroups (cgroup v2), where this machine lets us make them: a process that leaves its
 * process group (`setsid`, `detached`) is still in its backend's cgroup, so killing the cgroup ends
 * everything the backend started. Where the `cpu` and `memory` controllers are available to us,
 * the cgroup also carries the backend's limits. Where cgroup v2 is not writable, nothing here is
 * used and the server says so.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomName } from './respond.js'

/** Where this process's own cgroup v2 directory is, or why there is none. */
function ownCgroupDir(): { dir: string } | { reason: string } {
  let mountinfo: string
  let membership: string
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
    membership = readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return { reason: 'no /proc (not Linux)' }
  }
  // mountinfo: id parent major:minor root mountpoint options … - fstype source superoptions
  const mount = mountinfo
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[fields.indexOf('-') + 1] === 'cgroup2')
  const path = /^0::(.*)$/m.exec(membership)?.[1]
  if (!mount || path === undefined) return { reason: 'no cgroup v2 hierarchy mounted' }
  const root = mount[3]!
  const point = mount[4]!.replace(/\\040/g, ' ')
  if (!path.startsWith(root)) return { reason: 'this process is outside the mounted cgroup v2 hierarchy' }
  return { dir: join(point, path.slice(root === '/' ? 0 : root.length)) }
}

/** The cgroups of one server: a directory of its own, one child per backend. */
export class CgroupSet {
  /** The server's directory (removed on {@link dispose}). */
  readonly dir: string
  /** Controllers enabled for the backends' cgroups (`cpu`, `memory`), possibly none. */
  readonly controllers: ReadonlySet<string>

  private constructor(dir: string, controllers: Set<string>) {
    this.dir = dir
    this.controllers = controllers
  }

  /** Creates this server's cgroup directory, or returns why it cannot (not writable, no v2). */
  static create(): CgroupSet | { reason: string } {
    const own = ownCgroupDir()
    if ('reason' in own) return own
    const dir = join(own.dir, `session-backends-${process.pid}-${randomName(6)}`)
    try {
      mkdirSync(dir)
    } catch (error) {
      return { reason: `cgroup v2 at ${own.dir} is not writable (${(error as NodeJS.ErrnoException).code ?? 'error'})` }
    }
    const controllers = new Set<string>()
    // No controllers file, or a controller not delegated to us: containment only.
    const available = (readCgroup(dir, 'cgroup.controllers') ?? '').trim().split(/\s+/)
    for (const name of ['cpu', 'memory']) {
      if (available.includes(name) && writeCgroup(dir, 'cgroup.subtree_control', `+${name}`)) controllers.add(name)
    }
    return new CgroupSet(dir, controllers)
  }

  /** Creates the cgroup of one backend; returns its directory, or undefined when that fails. */
  make(id: string): string | undefined {
    const dir = join(this.dir, id)
    try {
      mkdirSync(dir)
      return dir
    } catch {
      return undefined
    }
  }

  /** Removes this server's directory once its backends' cgroups are gone. */
  dispose(): void {
    try {
      for (const entry of readdirSync(this.dir, { withFileTypes: true })) if (entry.isDirectory()) removeCgroup(join(this.dir, entry.name))
      rmdirSync(this.dir)
    } catch {
      // still populated or already gone: the watchdog removes it when the server ends
    }
  }
}

/** SIGKILLs every process in the cgroup `dir` (`cgroup.kill`, else one by one). */
export function killCgroup(dir: string): void {
  // Kernels before 5.14 have no cgroup.kill.
  if (writeCgroup(dir, 'cgroup.kill', '1')) return
  for (const pid of cgroupPids(dir)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** The pids in the cgroup `dir` (empty when it is gone). */
export function cgroupPids(dir: string): number[] {
  return (readCgroup(dir, 'cgroup.procs') ?? '').split('\n').filter(Boolean).map(Number)
}

/** True while some process is in the cgroup `dir`. */
export function cgroupPopulated(dir: string): boolean {
  return /^populated 1$/m.test(readCgroup(dir, 'cgroup.events') ?? '')
}

/** The CPU time used by everything ever in the cgroup `dir`, in seconds (undefined when unreadable). */
export function cgroupCpuSeconds(dir: string): number | undefined {
  const match = /^usage_usec (\d+)$/m.exec(readCgroup(dir, 'cpu.stat') ?? '')
  return match ? Number(match[1]) / 1e6 : undefined
}

/** Reads one cgroup interface file; undefined when it cannot be read. */
export function readCgroup(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), 'utf8')
  } catch {
    return undefined
  }
}

/** Writes one cgroup interface file; false when it cannot be written. */
export function writeCgroup(dir: string, file: string, value: string): boolean {
  try {
    writeFileSync(join(dir, file), value)
    return true
  } catch {
    return false
  }
}

/** Removes an empty cgroup directory; false while it is still populated. */
export function removeCgroup(dir: string): boolean {
  try {
    rmdirSync(dir)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
  }
}
