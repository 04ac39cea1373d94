/**
 * `resource_limits` on one machine without containers: what can be enforced is (CPU time and file
 * size as rlimits, through `prlimit` or a `sh -c ulimit` wrapper; memory by watching RSS), and what
 * cannot (CPU share, disk quota) is said in the log rather than silently ignored.
 */
import { accessSync, constants, readFileSync } from 'node:fs'
import type { ResourceLimits } from '../wire.js'

/** How a backend's command is run so that its limits apply. */
export interface LimitPlan {
  /** The program to run (the backend's own, or a wrapper that applies rlimits then execs it). */
  command: string
  args: string[]
  /** Memory ceiling to enforce by polling the process's RSS, in bytes. */
  memoryLimitBytes: number | undefined
  /** One line per limit, saying how it is enforced here or that it is not. */
  notes: string[]
}

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
 * Wraps `command` so that the rlimits in `limits` apply to it (and to everything it starts), and
 * lists what is and is not enforced.
 */
export function planLimits(command: string, args: readonly string[], limits: ResourceLimits | undefined, prlimit = findPrlimit()): LimitPlan {
  const plan: LimitPlan = { command, args: [...args], memoryLimitBytes: undefined, notes: [] }
  if (limits === undefined) return plan
  const cpu = limits.cpu_time_limit
  const fsize = limits.disk_limit_bytes
  if (cpu !== undefined || fsize !== undefined) {
    if (prlimit !== null) {
      const flags: string[] = []
      if (cpu !== undefined) flags.push(`--cpu=${cpu}:${cpu}`)
      if (fsize !== undefined) flags.push(`--fsize=${fsize}:${fsize}`)
      plan.command = prlimit
      plan.args = [...flags, '--', command, ...args]
    } else {
      // POSIX sh counts `ulimit -f` in 512-byte blocks.
      const steps: string[] = []
      if (cpu !== undefined) steps.push(`ulimit -t ${cpu}`)
      if (fsize !== undefined) steps.push(`ulimit -f ${Math.max(1, Math.floor(fsize / 512))}`)
      plan.command = '/bin/sh'
      plan.args = ['-c', `${steps.join(' && ')} && exec "$0" "$@"`, command, ...args]
    }
    const via = prlimit !== null ? 'prlimit' : 'ulimit'
    if (cpu !== undefined) plan.notes.push(`cpu_time_limit=${cpu}s enforced as RLIMIT_CPU (${via})`)
    if (fsize !== undefined) {
      plan.notes.push(`disk_limit_bytes=${fsize} enforced only as the largest file size (RLIMIT_FSIZE, ${via}), not as a disk quota`)
    }
  }
  if (limits.memory_limit_bytes !== undefined) {
    if (procReadable()) {
      plan.memoryLimitBytes = limits.memory_limit_bytes
      plan.notes.push(`memory_limit_bytes=${limits.memory_limit_bytes} enforced by watching the main process's RSS (SIGKILL when over; not a cgroup)`)
    } else {
      plan.notes.push(`memory_limit_bytes=${limits.memory_limit_bytes} NOT enforced locally (no /proc)`)
    }
  }
  if (limits.cpu_period_percent !== undefined || limits.cpu_period !== undefined) {
    plan.notes.push('cpu_period/cpu_period_percent NOT enforced locally (needs a cgroup; enforced on the hosted platform)')
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
