/**
 * The process runner: one backend = one local process in its own process group, its output split
 * into lines, signals sent to the whole group, and the readiness probe (`HEAD /` answered with
 * `HTTP/`, as Plane's drone checks it).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import { cgroupPopulated, killCgroup, removeCgroup } from './cgroup.js'
import { Spare } from './spare.js'

/** What to run. */
export interface RunSpec {
  command: string
  args: readonly string[]
  cwd: string
  env: Record<string, string>
  /** A cgroup v2 directory to start the process in (everything it starts stays there). */
  cgroup?: string | undefined
}

/** Whether `command` names an executable file, looked up in `PATH` when it has no slash. */
function executableExists(command: string, cwd: string, path: string | undefined): boolean {
  const candidates = command.includes('/') ? [isAbsolute(command) ? command : resolve(cwd, command)] : (path ?? '').split(delimiter).filter(Boolean).map((dir) => join(resolve(cwd, dir), command))
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/**
 * Whether `spec` can start through a spare shell (spare.ts) and fail the same way it would without:
 * a missing command must stay spawn's own ENOENT, not a shell's exit 127.
 */
export function spareFits(spec: RunSpec): boolean {
  return Spare.fits(spec) && executableExists(spec.command, spec.cwd, spec.env.PATH)
}

// Writes its own pid into the cgroup, then becomes the backend: nothing it starts is outside the cgroup.
const ENTER_CGROUP = 'echo $$ > "$0/cgroup.procs" 2>/dev/null; exec "$@"'

/** What the runner reports. None of these may throw. */
export interface RunHandlers {
  /** The process started. */
  onSpawn(pid: number): void
  /** One line of output (without its line break). */
  onLine(stream: 'stdout' | 'stderr', text: string): void
  /** The process could not be started (e.g. the command does not exist). */
  onError(error: Error): void
  /** The process exited and its output is drained; `code` is 128 + signal number when it was killed. */
  onExit(code: number, signal: NodeJS.Signals | null): void
}

const SIGNAL_NUMBERS: Partial<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15, SIGXCPU: 24, SIGXFSZ: 25 }

// After the process exits, its output pipes stay open while something else in the group holds them;
// the group is killed then, so this only bounds a process that left the group (setsid).
const DRAIN_MS = 500

/** A running backend process. */
/** The longest output line kept whole; a longer run without a newline is cut into lines this long. */
const MAX_LINE_CHARS = 64 * 1024

export class BackendProcess {
  readonly #child: ChildProcess
  readonly #cgroup: string | undefined
  #pid: number | undefined
  #exited = false
  #failed = false

  /**
   * Starts `spec`, or turns `spare` (a shell already in the cgroup `spec.cgroup`, which must
   * {@link spareFits}) into it.
   */
  constructor(spec: RunSpec, handlers: RunHandlers, spare?: Spare) {
    this.#cgroup = spec.cgroup
    let child: ChildProcess
    if (spare !== undefined) {
      child = spare.child
      spare.become(spec)
    } else {
      // Behind the cgroup wrapper a missing command would be the wrapper's exit 127: say it as spawn would.
      const missing = spec.cgroup !== undefined && !executableExists(spec.command, spec.cwd, spec.env.PATH)
      const [command, args] = spec.cgroup === undefined || missing ? [spec.command, [...spec.args]] : ['/bin/sh', ['-c', ENTER_CGROUP, spec.cgroup, spec.command, ...spec.args]]
      // detached: the child leads a new process group, so that signals reach whatever it starts too.
      child = spawn(command, args, { cwd: spec.cwd, env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    }
    this.#child = child
    let exit: { code: number; signal: NodeJS.Signals | null } | undefined
    let drainTimer: NodeJS.Timeout | undefined
    let reported = false
    const report = () => {
      if (reported || exit === undefined) return
      reported = true
      if (drainTimer) clearTimeout(drainTimer)
      flush('stdout')
      flush('stderr')
      handlers.onExit(exit.code, exit.signal)
    }
    const rest = { stdout: '', stderr: '' }
    const flush = (stream: 'stdout' | 'stderr') => {
      if (rest[stream] !== '') handlers.onLine(stream, rest[stream])
      rest[stream] = ''
    }
    for (const stream of ['stdout', 'stderr'] as const) {
      const readable = child[stream]!
      readable.setEncoding('utf8')
      readable.on('data', (chunk: string) => {
        const lines = (rest[stream] + chunk).split('\n')
        rest[stream] = lines.pop()!
        for (const line of lines) handlers.onLine(stream, line.endsWith('\r') ? line.slice(0, -1) : line)
        // Output that never ends a line must not grow without bound: past the cap it is a line.
        if (rest[stream].length > MAX_LINE_CHARS) flush(stream)
      })
      readable.on('error', () => {})
    }
    const started = () => {
      this.#pid = child.pid
      handlers.onSpawn(child.pid!)
    }
    // A spare started long ago: it is "spawned" now, after the caller has its BackendProcess.
    if (spare !== undefined) process.nextTick(started)
    else child.on('spawn', started)
    child.on('error', (error) => {
      // 'error' without 'spawn' means it never started; after a start it is a failed kill(): ignore.
      if (this.#pid === undefined && !this.#failed) {
        this.#failed = true
        this.#exited = true
        handlers.onError(error)
      }
    })
    child.on('exit', (code, signal) => {
      this.#exited = true
      exit = { code: code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0), signal }
      // Whatever the backend started is part of its group (and cgroup): nothing may outlive it.
      this.#signalGroup('SIGKILL')
      if (this.#cgroup !== undefined) killCgroup(this.#cgroup)
      drainTimer = setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
        report()
      }, DRAIN_MS)
    })
    child.on('close', report)
  }

  /** The process id (also its process group id), once started. */
  get pid(): number | undefined {
    return this.#pid
  }

  /** True once the process has exited (or never started). */
  get exited(): boolean {
    return this.#exited
  }

  /**
   * Sends `signal` to the whole process group; SIGKILL also kills the cgroup (processes that left
   * the group). False when there is nothing left to signal.
   */
  kill(signal: NodeJS.Signals): boolean {
    const sent = this.#signalGroup(signal)
    if (signal === 'SIGKILL' && this.#cgroup !== undefined) killCgroup(this.#cgroup)
    return sent
  }

  /**
   * Resolves once no process of the group (nor of the cgroup) is left in the process table, i.e.
   * also the killed children have been reaped (by init, which can take a second), or after
   * `timeoutMs`. Removes the cgroup then.
   */
  async gone(timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs
    const cgroup = this.#cgroup
    while ((!this.#exited || this.#signalGroup(0) || (cgroup !== undefined && cgroupPopulated(cgroup))) && Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (cgroup !== undefined) removeCgroup(cgroup)
  }

  #signalGroup(signal: NodeJS.Signals | 0): boolean {
    const pid = this.#pid ?? this.#child.pid
    if (pid === undefined) return false
    try {
      process.kill(-pid, signal)
      return true
    } catch {
      return false // ESRCH: the group is gone
    }
  }
}

function bindOnce(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.on('error', () => resolve(undefined))
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address()
      const bound = typeof address === 'object' && address !== null ? address.port : undefined
      server.close(() => resolve(bound))
    })
  })
}

/**
 * The ports a backend is given: below the range the OS hands out for port 0 and for outgoing
 * connections, so that between this pick and the backend's own listen no other program on the
 * machine can be given the same port by the OS and answer the readiness probe in its place.
 */
function backendPortRange(): [number, number] {
  let low = 49152 // IANA's dynamic range, where /proc does not say (macOS uses it)
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0])
    if (Number.isInteger(first)) low = first
  } catch {
    // not Linux: keep the default
  }
  return low > 11024 ? [low - 10000, low] : [0, 0]
}
let portRange: [number, number] | undefined

/**
 * A TCP port free on every address in `hosts` (checked by binding it, released at once so the backend
 * can bind it), picked at random below the OS's ephemeral range (see backendPortRange). Free on each
 * loopback, so that whichever one the backend listens on, what answers there is the backend. Rejects
 * when the first address cannot be bound at all.
 */
export async function freePort(hosts: readonly string[]): Promise<number> {
  const [from, to] = (portRange ??= backendPortRange())
  for (let attempt = 0; ; attempt++) {
    // After many taken picks (or with no range below the ephemeral one), ask the OS for any port.
    const wanted = to > from && attempt < 40 ? from + Math.floor(Math.random() * (to - from)) : 0
    const port = await bindOnce(hosts[0]!, wanted)
    if (port === undefined) {
      if (wanted !== 0) continue // taken: pick another
      throw new Error(`cannot listen on ${hosts[0]}`)
    }
    let free = true
    for (const host of hosts.slice(1)) {
      // An address family this machine lacks (EADDRNOTAVAIL) cannot hold a stranger either.
      if ((await bindOnce(host, port)) === undefined && (await addressUsable(host))) free = false
    }
    if (free || attempt >= 60) return port
  }
}

async function addressUsable(host: string): Promise<boolean> {
  return (await bindOnce(host, 0)) !== undefined
}

const PROBE = Buffer.from('HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
const ATTEMPT_MS = 1000

/** One probe: resolves true when `host:port` answers `HEAD /` with something starting with `HTTP/`. */
function probeOnce(host: string, port: number, sockets: Set<Socket>): Promise<boolean> {
  return new Promise((resolve) => {
    let answer = ''
    const s = connect({ host, port })
    sockets.add(s)
    s.setTimeout(ATTEMPT_MS)
    const settle = (ok: boolean) => {
      sockets.delete(s)
      s.destroy()
      resolve(ok)
    }
    s.on('connect', () => s.write(PROBE))
    s.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
      if (answer.length >= 5) settle(answer.startsWith('HTTP/'))
    })
    s.on('timeout', () => settle(false))
    s.on('error', () => settle(false))
    s.on('close', () => settle(false))
  })
}

/**
 * Probes `port` on each of `hosts` (the address the backend was told to bind first, then the other
 * loopback: a backend that binds `localhost` may land on either) every `intervalMs` until one
 * answers a `HEAD /` with `HTTP/` (any status counts), then calls `onReady` once with that host.
 * Returns a function that stops probing. The pause between probes starts at 1 ms and grows with the
 * time spent waiting (a fiftieth of it) up to `intervalMs`: a backend that starts fast is seen ready
 * within a millisecond, and a slow one costs at most one probe every `intervalMs`, never more than
 * 2% added to its start.
 */
export function probeUntilReady(hosts: readonly string[], port: number, intervalMs: number, onReady: (host: string) => void): () => void {
  const started = performance.now()
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const sockets = new Set<Socket>()
  const attempt = async () => {
    timer = undefined
    if (stopped) return
    const answers = await Promise.all(hosts.map((host) => probeOnce(host, port, sockets)))
    if (stopped) return
    const index = answers.indexOf(true)
    if (index !== -1) {
      stopped = true
      onReady(hosts[index]!)
    } else timer = setTimeout(() => void attempt(), Math.min(intervalMs, Math.max(1, (performance.now() - started) / 50)))
  }
  void attempt()
  return () => {
    stopped = true
    if (timer) clearTimeout(timer)
    for (const s of sockets) s.destroy()
  }
}
