/**
 * `resource_limits` on one machine without containers: what can be enforced is (CPU time and file
 * size as rlimits, through `prlimit` or a `sh -c ulimit` wrapper; CPU share and memory through the
 * backend's cgroup where its controllers are ours), what can only be watched is (a backend's CPU
 * time and memory, checked periodically), and what cannot (a disk quota) is said in the log rather
 * than silently ignored, each in exactly those words.
 */
import { accessSync, constants, readFileSync } from 'node:fs'
import type { ResourceLimits } from '../wire.js'

/** How a backend's command is run so that its limits apply. */
export interface LimitPlan {
  /** The program to run (the backend's own, or a wrapper that applies rlimits then execs it). */
  command: string
  args: string[]
  /** cgroup interface files to write before the backend starts (kernel-enforced limits). */
  cgroupFiles: Record<string, string>
  /** Memory ceiling the server checks (RSS, summed over the cgroup's processes or the main one's), in bytes. */
  memoryLimitBytes: number | undefined
  /** Whose RSS is checked against {@link memoryLimitBytes}. */
  memoryScope: 'backend' | 'main process'
  /** CPU seconds of the whole backend (its cgroup's `cpu.stat`) that the server checks. */
  cpuSecondsLimit: number | undefined
  /** One line per limit, saying exactly how it is enforced here, or that it is not. */
  notes: string[]
}

/** What cgroup the backend runs in: none, or one with these controllers enabled. */
export type LimitCgroup = { controllers: ReadonlySet<string> } | undefined

let prlimitPath: string | null | undefined

/** The path of util-linux `prlimit`, or null when it is not installed. Looked up once. */
export function findPrlimit(): string | null {
  if (prlimitPath !== undefined) return prlimitPath
  prlimitPath = null
  for (const candidate of ['/usr/bin/prlimit', '/bin/prlimit', '/usr/local/bin/prlimit']) {
    try {
      accessSync(candidate, constants.X_OK)
      prlimitPath = candidate
      break
    } catch {
      // not here
    }
  }
  return prlimitPath
}

function positiveInt(limits: ResourceLimits, field: keyof ResourceLimits): number | undefined {
  const value = limits[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`resource_limits.${field} must be a positive number`)
  }
  return Math.ceil(value)
}

/** Validates `resource_limits`; throws RangeError naming the field. */
export function checkLimits(limits: unknown): ResourceLimits | undefined {
  if (limits === undefined || limits === null) return undefined
  if (typeof limits !== 'object' || Array.isArray(limits)) throw new RangeError('resource_limits must be an object')
  const out: ResourceLimits = {}
  for (const field of ['cpu_period', 'cpu_period_percent', 'cpu_time_limit', 'memory_limit_bytes', 'disk_limit_bytes'] as const) {
    const value = positiveInt(limits as ResourceLimits, field)
    if (value !== undefined) out[field] = value
  }
  if (out.cpu_period_percent !== undefined && out.cpu_period_percent > 100 * 1024) {
    throw new RangeError('resource_limits.cpu_period_percent is too large')
  }
  return out
}

/**
 * Wraps `command` so that the rlimits in `limits` apply to it (and to everything it starts), picks
 * the cgroup files to write and the checks the server runs, and lists exactly what is and is not
 * enforced. `checkSeconds` is how often the server checks (for the notes).
 */
export function planLimits(
  command: string,
  args: readonly string[],
  limits: ResourceLimits | undefined,
  prlimit = findPrlimit(),
  cgroup: LimitCgroup = undefined,
  checkSeconds = 1,
): LimitPlan {
  const plan: LimitPlan = { command, args: [...args], cgroupFiles: {}, memoryLimitBytes: undefined, memoryScope: 'main process', cpuSecondsLimit: undefined, notes: [] }
  if (limits === undefined) return plan
  const every = `every ${checkSeconds} s`
  const cpu = limits.cpu_time_limit
  const fsize = limits.disk_limit_bytes
  if (cpu !== undefined || fsize !== undefined) {
    if (prlimit !== null) {
      const flags: string[] = []
      // Soft below hard: the kernel sends SIGXCPU at the soft limit (so the kill is known to be this
      // limit's), SIGKILL one second later if the process ignores it. Equal limits mean a bare SIGKILL.
      if (cpu !== undefined) flags.push(`--cpu=${cpu}:${cpu + 1}`)
      if (fsize !== undefined) flags.push(`--fsize=${fsize}:${fsize}`)
      plan.command = prlimit
      plan.args = [...flags, '--', command, ...args]
    } else {
      // POSIX sh counts `ulimit -f` in 512-byte blocks.
      const steps: string[] = []
      if (cpu !== undefined) steps.push(`ulimit -S -t ${cpu} && ulimit -H -t ${cpu + 1}`)
      if (fsize !== undefined) steps.push(`ulimit -f ${Math.max(1, Math.floor(fsize / 512))}`)
      plan.command = '/bin/sh'
      plan.args = ['-c', `${steps.join(' && ')} && exec "$0" "$@"`, command, ...args]
    }
    const via = prlimit !== null ? 'prlimit' : 'ulimit'
    if (cpu !== undefined) {
      if (cgroup !== undefined) {
        plan.cpuSecondsLimit = cpu
        plan.notes.push(`cpu_time_limit=${cpu}s: per process as RLIMIT_CPU (${via}), and per backend (all its processes together, cgroup cpu.stat checked ${every}; killed when over)`)
      } else {
        plan.notes.push(`cpu_time_limit=${cpu}s: per process only, as RLIMIT_CPU (${via}); NOT per backend (no cgroup: processes it starts each get ${cpu}s)`)
      }
    }
    if (fsize !== undefined) {
      plan.notes.push(`disk_limit_bytes=${fsize}: only as the largest file a process may write (RLIMIT_FSIZE, ${via}); NOT a disk quota`)
    }
  }
  const memory = limits.memory_limit_bytes
  if (memory !== undefined) {
    if (cgroup?.controllers.has('memory')) {
      plan.cgroupFiles['memory.max'] = String(memory)
      plan.cgroupFiles['memory.swap.max'] = '0'
      plan.notes.push(`memory_limit_bytes=${memory}: enforced per backend by the kernel (cgroup memory.max)`)
    } else if (!procReadable()) {
      plan.notes.push(`memory_limit_bytes=${memory} NOT enforced locally (no /proc)`)
    } else if (cgroup !== undefined) {
      plan.memoryLimitBytes = memory
      plan.memoryScope = 'backend'
      plan.notes.push(`memory_limit_bytes=${memory}: watched, not enforced: the summed RSS of the backend's processes, checked ${every}, SIGKILL when over (no cgroup memory controller here, so a spike between checks passes)`)
    } else {
      plan.memoryLimitBytes = memory
      plan.notes.push(`memory_limit_bytes=${memory}: watched, not enforced: the main process's RSS only (not its children), checked ${every}, SIGKILL when over`)
    }
  }
  if (limits.cpu_period_percent !== undefined || limits.cpu_period !== undefined) {
    if (cgroup?.controllers.has('cpu') && limits.cpu_period_percent !== undefined) {
      // Plane: cpu_period in µs (default 100 ms), cpu_period_percent of one CPU per period.
      const period = limits.cpu_period ?? 100_000
      const quota = Math.max(1000, Math.round((period * limits.cpu_period_percent) / 100))
      plan.cgroupFiles['cpu.max'] = `${quota} ${period}`
      plan.notes.push(`cpu_period_percent=${limits.cpu_period_percent}: enforced per backend by the kernel (cgroup cpu.max ${quota} ${period})`)
    } else {
      plan.notes.push('cpu_period/cpu_period_percent NOT enforced locally (needs the cgroup v2 cpu controller, not available here; enforced on the hosted platform)')
    }
  }
  return plan
}

let procOk: boolean | undefined
function procReadable(): boolean {
  if (procOk === undefined) {
    try {
      readFileSync('/proc/self/status', 'utf8')
      procOk = true
    } catch {
      procOk = false
    }
  }
  return procOk
}

/** The resident set size of a process in bytes, or undefined when it cannot be read (gone). */
export function readRss(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status)
    return match ? Number(match[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}
