/**
 * The backend registry: every backend with its forward-only status history (kept for stream
 * replay), the key → backend and token → grant maps, and the lifecycle that drives each backend's
 * process from `scheduled` to `terminated` (Plane's drone state machine, on local processes).
 */
import type {
  BackendInfo,
  BackendState,
  BackendStatus,
  RunningBackends,
  TerminatedState,
  TerminationKind,
  TerminationReason,
} from '../wire.js'
import { isEnding, statusRank } from '../wire.js'
import type { ConnectInput } from './connect-request.js'
import { CgroupSet, cgroupCpuSeconds, cgroupPids, readCgroup, removeCgroup, writeCgroup } from './cgroup.js'
import { findPrlimit, type LimitPlan, planLimits, readRss } from './limits.js'
import { prepareMount } from './mount.js'
import type { ResolvedDevOptions } from './options.js'
import { ApiProblem, randomName, randomToken, unbracket } from './respond.js'
import { BackendProcess, freePort, probeUntilReady, type RunSpec, spareFits } from './runner.js'
import { type Spare, SpareShells } from './spare.js'
import { Watchdog } from './watchdog.js'

/** One line of a backend's output. */
export interface BackendLogLine {
  backendId: string
  stream: 'stdout' | 'stderr'
  text: string
  /** ISO time the line was read. */
  time: string
}

/** A backend as the terminal UI and event listeners see it. */
export interface BackendSummary {
  id: string
  key: string
  status: BackendStatus
  /** ISO time it was scheduled. */
  createdAt: string
  pid: number | undefined
  /** The image a Plane connect named (the local server runs its one command for every backend). */
  image?: string
}

/** What {@link DevServerOptions.onEvent} receives. */
export type DevEvent =
  | { type: 'status'; backend: BackendSummary; state: BackendState }
  | { type: 'log'; key: string; line: BackendLogLine }
  | { type: 'message'; level: 'info' | 'warn' | 'error'; text: string; backendId?: string }

/** What a connection token grants: a backend, and who it was handed to. */
export interface Grant {
  readonly backend: Backend
  readonly user: string | undefined
  readonly userData: string
}

/** Where a connect request came in (echoed in info and lists). */
export interface ConnectContext {
  account: string
  service: string
  environment: string | undefined
  /** The image of a connect on the Plane routes. */
  image?: string | undefined
}

// A backend's tokens are kept until it terminates; past this many the oldest stop working, so that a
// key connected to in a loop cannot grow memory without bound.
const MAX_TOKENS_PER_BACKEND = 10_000

const now = () => new Date().toISOString()

/** One backend: identity, status history, activity, output, and its process. */
export class Backend {
  readonly history: BackendState[] = []
  readonly tokens = new Set<string>()
  readonly logs: BackendLogLine[] = []
  /** UTF-8 bytes of the text in {@link logs}. */
  logBytes = 0
  readonly createdMs = Date.now()
  readonly secretToken = randomToken()
  /** Plane's fencing token: epoch milliseconds when the key was acquired. */
  readonly fencingToken = this.createdMs
  lastActivity = this.createdMs
  /** Proxied requests in flight plus open upgraded connections. */
  open = 0
  /** The `user` of the latest connect to this backend (the dashboard shows it). */
  lastUser: string | undefined
  /** Why the server killed it for a resource limit (the log line), if it did. */
  limitKill: string | undefined
  exitCode: number | undefined
  port: number | undefined
  /** The address the backend answered the readiness probe on (where the proxy reaches it). */
  host: string | undefined
  process: BackendProcess | undefined
  /** @internal */ timers: { grace?: NodeJS.Timeout; startup?: NodeJS.Timeout; memory?: NodeJS.Timeout; stopProbe?: () => void } = {}
  readonly #statusListeners = new Set<(state: BackendState) => void>()
  readonly #logListeners = new Set<(line: BackendLogLine) => void>()

  constructor(
    readonly id: string,
    readonly key: string,
    readonly input: ConnectInput,
    readonly context: ConnectContext,
  ) {}

  /** The latest state. */
  get state(): BackendState {
    return this.history[this.history.length - 1]!
  }

  get status(): BackendStatus {
    return this.state.status
  }

  /** True once terminating, hard-terminating or terminated. */
  get ending(): boolean {
    return isEnding(this.status)
  }

  /** Calls `fn` with every later status change; returns the unsubscribe function. */
  onStatus(fn: (state: BackendState) => void): () => void {
    this.#statusListeners.add(fn)
    return () => this.#statusListeners.delete(fn)
  }

  /** Calls `fn` with every later output line; returns the unsubscribe function. */
  onLog(fn: (line: BackendLogLine) => void): () => void {
    this.#logListeners.add(fn)
    return () => this.#logListeners.delete(fn)
  }

  /** @internal */
  emitStatus(state: BackendState): void {
    for (const fn of [...this.#statusListeners]) fn(state)
  }

  /** @internal */
  emitLog(line: BackendLogLine): void {
    for (const fn of [...this.#logListeners]) fn(line)
  }

  summary(): BackendSummary {
    const summary: BackendSummary = { id: this.id, key: this.key, status: this.status, createdAt: this.history[0]!.time, pid: this.process?.pid }
    if (this.context.image !== undefined) summary.image = this.context.image
    return summary
  }

  /** `GET /v2/backend/{id}`. */
  info(): BackendInfo {
    const info: BackendInfo = {
      id: this.id,
      created_at: this.history[0]!.time,
      service_name: this.context.service,
      account_name: this.context.account,
      cluster_name: 'localhost',
      image_digest: 'local',
      key: this.key,
      statuses: this.history.map((state) => {
        const entry: BackendInfo['statuses'][number] = { status: state.status, time: state.time }
        if ('termination_reason' in state && state.termination_reason) entry.termination_reason = state.termination_reason
        if ('termination_kind' in state && state.termination_kind) entry.termination_kind = state.termination_kind
        if (state.status === 'terminated' && this.exitCode !== undefined) entry.exit_code = this.exitCode
        return entry
      }),
    }
    if (this.context.environment !== undefined) info.environment_name = this.context.environment
    if (this.input.limits?.memory_limit_bytes !== undefined) info.max_mem_bytes = this.input.limits.memory_limit_bytes
    return info
  }
}

/**
 * The log line for a backend whose main process died of a resource limit the kernel enforced
 * (RLIMIT_CPU's SIGXCPU, RLIMIT_FSIZE's SIGXFSZ, the cgroup's OOM killer), or undefined.
 */
function limitSignal(signal: NodeJS.Signals | null, limits: ConnectInput['limits'], cgroup: string | undefined): string | undefined {
  if (signal === 'SIGXCPU' && limits?.cpu_time_limit !== undefined) {
    return `killed: a process used resource_limits.cpu_time_limit (${limits.cpu_time_limit} s of CPU; SIGXCPU from RLIMIT_CPU)`
  }
  if (signal === 'SIGXFSZ' && limits?.disk_limit_bytes !== undefined) {
    return `killed: a file reached resource_limits.disk_limit_bytes (${limits.disk_limit_bytes} bytes; SIGXFSZ from RLIMIT_FSIZE)`
  }
  if (signal === 'SIGKILL' && limits?.memory_limit_bytes !== undefined && cgroup !== undefined) {
    const events = readCgroup(cgroup, 'memory.events')
    if (events !== undefined && /^oom_kill [1-9]/m.test(events)) {
      return `killed: over resource_limits.memory_limit_bytes (${limits.memory_limit_bytes}; the kernel's OOM killer, cgroup memory.max)`
    }
  }
  return undefined
}

/** The result of a connect. */
export interface ConnectResult {
  backend: Backend
  token: string
  spawned: boolean
}

/** Every backend of one server, and their lifecycle. */
export class Registry {
  readonly #options: ResolvedDevOptions
  readonly #backends = new Map<string, Backend>()
  readonly #byKey = new Map<string, Backend>()
  readonly #grants = new Map<string, Grant>()
  readonly #ended: string[] = []
  /** UTF-8 bytes of output kept for ended backends. */
  #endedLogBytes = 0
  /** Processes whose group may still have members (killed children not yet reaped). */
  readonly #processes = new Set<BackendProcess>()
  /** Listeners of every status change and connect (the dashboard's event stream). */
  readonly #watchers = new Set<(backend: Backend) => void>()
  readonly #sweeper: NodeJS.Timeout
  /** This server's cgroups, or why there are none. */
  readonly #cgroups: CgroupSet | undefined
  readonly #watchdog: Watchdog
  /** A shell waiting in a fresh cgroup, so that a backend need not wait to enter one (spare.ts). */
  readonly #spares: SpareShells | undefined
  #closing = false
  /** The address backends are told to bind (`HOST`): the loopback of the server's family. */
  readonly backendHost: string
  /** The other loopback, probed too: a backend that binds `localhost` may land there. */
  readonly #otherLoopback: string

  constructor(options: ResolvedDevOptions) {
    this.#options = options
    const v6 = unbracket(options.host) === '::1'
    this.backendHost = v6 ? '::1' : '127.0.0.1'
    this.#otherLoopback = v6 ? '127.0.0.1' : '::1'
    this.#sweeper = setInterval(() => this.#sweep(), options.sweepIntervalMs)
    this.#watchdog = new Watchdog((text) => this.message('warn', text))
    const cgroups = CgroupSet.create()
    if (cgroups instanceof CgroupSet) {
      this.#cgroups = cgroups
      this.#watchdog.cgroup(cgroups.dir)
      this.#spares = new SpareShells(cgroups, options.cwd)
    } else {
      this.message('warn', `no per-backend cgroup: ${cgroups.reason}; a process a backend moves out of its process group (setsid, detached) is not killed with it`)
    }
  }

  /** The backend with this id, live or recently ended. */
  get(id: string): Backend | undefined {
    return this.#backends.get(id)
  }

  /** What a connection token grants, while its backend is alive. */
  grant(token: string): Grant | undefined {
    return this.#grants.get(token)
  }

  /** Every backend the registry remembers: live ones and the latest `keepEnded` that ended, oldest first. */
  all(): Backend[] {
    return [...this.#backends.values()]
  }

  /** Calls `fn` with the backend after each of its status changes and connects; returns the unsubscribe function. */
  watch(fn: (backend: Backend) => void): () => void {
    this.#watchers.add(fn)
    return () => this.#watchers.delete(fn)
  }

  /** Backends that have not terminated yet. */
  live(): Backend[] {
    return [...this.#byKey.values()]
  }

  /** Returns the live backend holding `input.key` (with a fresh token), or spawns one. */
  connect(input: ConnectInput, context: ConnectContext): ConnectResult {
    if (this.#closing) throw new ApiProblem(503, 'ShuttingDown', 'the dev server is shutting down')
    if (input.key !== undefined) {
      const existing = this.#byKey.get(input.key)
      if (existing) {
        if (input.tag !== undefined && input.tag !== (existing.input.tag ?? '')) {
          throw new ApiProblem(409, 'KeyHeld', 'the key is held by a backend with another tag')
        }
        const token = this.#issue(existing, input)
        this.#changed(existing)
        return { backend: existing, token, spawned: false }
      }
    }
    if (!input.spawn) throw new ApiProblem(409, 'KeyUnheldNoSpawnConfig', 'no backend holds this key and spawn is false')
    let id = randomName()
    while (this.#backends.has(id)) id = randomName()
    const backend = new Backend(id, input.key ?? `lk-${randomName()}`, input, context)
    this.#backends.set(id, backend)
    this.#byKey.set(backend.key, backend)
    backend.lastUser = input.user
    this.#advance(backend, { status: 'scheduled', time: new Date(backend.createdMs).toISOString() })
    const token = this.#issue(backend, input)
    // Answered first (status `scheduled`, as Plane), then started.
    setImmediate(() => void this.#launch(backend))
    return { backend, token, spawned: true }
  }

  /**
   * Soft (SIGTERM, then SIGKILL after the grace period) or hard (SIGKILL) termination.
   * Returns false when the backend has already terminated.
   */
  terminate(backend: Backend, hard: boolean, reason: TerminationReason): boolean {
    if (backend.status === 'terminated') return false
    if (hard) {
      if (backend.status !== 'hard-terminating') this.#hardKill(backend, reason)
      return true
    }
    if (backend.ending) return true
    this.#advance(backend, { status: 'terminating', time: now(), termination_reason: reason, termination_kind: 'soft' })
    if (backend.process) {
      backend.process.kill('SIGTERM')
      backend.timers.grace = setTimeout(() => this.#hardKill(backend, reason), this.#options.graceMs)
    } else {
      this.#finish(backend, undefined)
    }
    return true
  }

  /** Marks proxied traffic to a backend: a request or upgraded connection starts. */
  begin(backend: Backend): void {
    backend.open++
    backend.lastActivity = Date.now()
  }

  /** The request or upgraded connection begun with {@link begin} is over. */
  end(backend: Backend): void {
    backend.open--
    backend.lastActivity = Date.now()
  }

  /** Resolves once `backend` has terminated. */
  whenTerminated(backend: Backend): Promise<void> {
    if (backend.status === 'terminated') return Promise.resolve()
    return new Promise((resolve) => {
      const off = backend.onStatus((state) => {
        if (state.status === 'terminated') {
          off()
          resolve()
        }
      })
    })
  }

  /** Terminates every live backend (reason `external`) and resolves once all have terminated. */
  async terminateAll(hard = false): Promise<void> {
    const live = this.live()
    for (const backend of live) this.terminate(backend, hard, 'external')
    await Promise.all(live.map((b) => this.whenTerminated(b)))
  }

  /**
   * SIGKILLs every process group at once, synchronously: the last resort when the host process
   * exits without {@link close} (it runs in a process 'exit' handler, where nothing async runs).
   */
  killAllNow(): void {
    void this.#spares?.close()
    for (const proc of this.#processes) proc.kill('SIGKILL')
  }

  /** Refuses new connects, terminates everything, waits until every process is gone. */
  async close(): Promise<void> {
    this.#closing = true
    const spares = this.#spares?.close()
    await this.terminateAll()
    clearInterval(this.#sweeper)
    await Promise.all([spares, ...[...this.#processes].map((p) => p.gone())])
    this.#cgroups?.dispose()
    this.#watchdog.close()
  }

  /** `GET /v2/account/{account}/backends`. */
  running(): RunningBackends {
    return {
      running_backends: this.live().map((b) => ({
        id: b.id,
        created_at: b.history[0]!.time,
        account_name: b.context.account,
        service_name: b.context.service,
        status: { status: b.status, time: b.state.time },
        key: b.key,
      })),
    }
  }

  #issue(backend: Backend, input: ConnectInput): string {
    const token = randomToken()
    this.#grants.set(token, { backend, user: input.user, userData: input.userData })
    backend.lastUser = input.user
    backend.tokens.add(token)
    if (backend.tokens.size > MAX_TOKENS_PER_BACKEND) {
      const oldest = backend.tokens.values().next().value as string
      backend.tokens.delete(oldest)
      this.#grants.delete(oldest)
    }
    return token
  }

  #emit(event: DevEvent): void {
    try {
      this.#options.onEvent?.(event)
    } catch {
      // A listener's bug must not break a backend's lifecycle.
    }
  }

  /** Reports a message through `onEvent` (a throwing listener is ignored). */
  message(level: 'info' | 'warn' | 'error', text: string, backendId?: string): void {
    this.#emit(backendId === undefined ? { type: 'message', level, text } : { type: 'message', level, text, backendId })
  }

  /** Applies a status if it moves forward (else drops it, as Plane does). */
  #advance(backend: Backend, state: BackendState): boolean {
    if (backend.history.length > 0 && statusRank(state.status) <= statusRank(backend.status)) return false
    backend.history.push(state)
    this.#emit({ type: 'status', backend: backend.summary(), state })
    backend.emitStatus(state)
    this.#changed(backend)
    return true
  }

  #changed(backend: Backend): void {
    for (const fn of [...this.#watchers]) {
      try {
        fn(backend)
      } catch {
        // A watcher's bug must not break a backend's lifecycle.
      }
    }
  }

  async #launch(backend: Backend): Promise<void> {
    const options = this.#options
    // What was set aside for the process until it runs: given back if anything throws before.
    let spare: Spare | undefined
    let cgroup: string | undefined
    try {
      if (!this.#advance(backend, { status: 'loading', time: now() })) return
      // The base and what the developer passed, the request's env, then ours: never the server's own.
      const env: Record<string, string> = { ...options.env, ...backend.input.env }
      const mount = backend.input.mount
      const hosts = [this.backendHost, this.#otherLoopback]
      const [port, dataDir] = await Promise.all([
        freePort(hosts),
        mount === undefined ? undefined : prepareMount(options.dataDir, options.cwd, backend.key, mount),
      ])
      if (backend.status !== 'loading') return // terminated meanwhile
      const cgroups = this.#cgroups
      env.PORT = String(port)
      env.HOST = this.backendHost
      env.SESSION_BACKEND_ID = backend.id
      env.SESSION_BACKEND_KEY = backend.key
      env.SESSION_BACKEND_FENCING_TOKEN = String(backend.fencingToken)
      if (dataDir !== undefined) env.SESSION_BACKEND_DATA_DIR = dataDir
      const plan = (withCgroup: boolean) =>
        planLimits(options.command, options.args, backend.input.limits, findPrlimit(), withCgroup ? { controllers: cgroups!.controllers } : undefined, options.memoryCheckIntervalMs / 1000)
      // The plan's command does not depend on the cgroup, only its notes and cgroup files do.
      let limits = plan(cgroups !== undefined)
      const spec: RunSpec = { command: limits.command, args: limits.args, cwd: options.cwd, env }
      // A spare shell already in a cgroup of its own starts the backend without waiting to enter one.
      spare = this.#spares?.ready && spareFits(spec) ? this.#spares.take() : undefined
      cgroup = spec.cgroup = spare?.cgroup ?? cgroups?.make(backend.id)
      if (cgroup === undefined && cgroups !== undefined) limits = plan(false)
      for (const [file, value] of Object.entries(limits.cgroupFiles)) {
        // memory.swap.max only exists with swap accounting; memory.max holds without it.
        if (!writeCgroup(cgroup!, file, value) && file !== 'memory.swap.max') {
          limits.notes.push(`could NOT set ${file} = ${value} in the backend's cgroup: that limit is NOT enforced`)
        }
      }
      for (const note of limits.notes) this.message(/NOT|not enforced/.test(note) ? 'warn' : 'info', note, backend.id)
      backend.port = port
      this.#advance(backend, { status: 'starting', time: now() })
      backend.timers.startup = setTimeout(() => {
        if (statusRank(backend.status) < statusRank('ready')) this.#hardKill(backend, 'startuptimeout')
      }, options.startupTimeoutMs)
      // proc.gone() removes the cgroup of a process that ran; one that never started has it removed here.
      const forget = (pid: number | undefined) => {
        this.#processes.delete(proc)
        if (pid !== undefined) this.#watchdog.remove(pid)
        else if (cgroup !== undefined) removeCgroup(cgroup)
      }
      const proc = new BackendProcess(
        spec,
        {
          onSpawn: (pid) => {
            this.#watchdog.add(pid)
            if (!this.#advance(backend, { status: 'waiting', time: now() })) return
            backend.timers.stopProbe = probeUntilReady(hosts, port, options.probeIntervalMs, (host) => {
              backend.host = host
              if (host !== this.backendHost) {
                this.message('warn', `answers on ${host} only, not on HOST=${this.backendHost}: listen on process.env.HOST`, backend.id)
              }
              clearTimeout(backend.timers.startup)
              // The idle clock starts at ready: a slow start is the startup timeout's business.
              backend.lastActivity = Date.now()
              this.#advance(backend, { status: 'ready', time: now() })
              // The next spare is made once this backend is up, not while it starts.
              this.#spares?.refill()
            })
            this.#watchLimits(backend, limits, cgroup)
          },
          onLine: (stream, text) => this.#log(backend, stream, text),
          onError: (error) => {
            this.message('error', `could not start ${options.command}: ${error.message}`, backend.id)
            forget(undefined)
            this.#finish(backend, 'failed')
            this.#spares?.refill()
          },
          onExit: (code, signal) => {
            backend.exitCode = code
            const limit = backend.limitKill ?? limitSignal(signal, backend.input.limits, cgroup)
            if (limit !== undefined && backend.limitKill === undefined) this.message('warn', limit, backend.id)
            else if (!backend.ending && limit === undefined) {
              this.message(code === 0 ? 'info' : 'warn', `exited on its own with ${signal ?? `code ${code}`}`, backend.id)
            }
            this.#finish(backend, code)
            this.#spares?.refill()
            void proc.gone().then(() => forget(proc.pid))
          },
        },
        spare,
      )
      backend.process = proc
      this.#processes.add(proc)
    } catch (error) {
      // Whatever threw, no process took what was set aside (nothing after the start can throw).
      if (spare !== undefined) void spare.discard()
      else if (cgroup !== undefined) removeCgroup(cgroup)
      this.message('error', `could not start: ${(error as Error).message}`, backend.id)
      this.#finish(backend, 'failed')
    }
  }

  /** Checks the limits the kernel does not enforce here, every `memoryCheckIntervalMs`; kills when over. */
  #watchLimits(backend: Backend, plan: LimitPlan, cgroup: string | undefined): void {
    const { memoryLimitBytes: memory, cpuSecondsLimit: cpu } = plan
    if (memory === undefined && cpu === undefined) return
    backend.timers.memory = setInterval(() => {
      const proc = backend.process
      if (!proc || proc.exited) return
      let over: string | undefined
      if (memory !== undefined) {
        const pids = plan.memoryScope === 'backend' && cgroup !== undefined ? cgroupPids(cgroup) : proc.pid === undefined ? [] : [proc.pid]
        const rss = pids.reduce((sum, pid) => sum + (readRss(pid) ?? 0), 0)
        if (rss > memory) over = `killed: resident memory ${rss} bytes (${plan.memoryScope}) is over memory_limit_bytes ${memory}`
      }
      const used = cpu !== undefined && cgroup !== undefined ? cgroupCpuSeconds(cgroup) : undefined
      if (over === undefined && used !== undefined && used >= cpu!) {
        over = `killed: the backend's processes used ${used.toFixed(1)} s of CPU, resource_limits.cpu_time_limit is ${cpu} s`
      }
      if (over === undefined) return
      clearInterval(backend.timers.memory)
      backend.limitKill = over
      this.message('warn', over, backend.id)
      proc.kill('SIGKILL')
    }, this.#options.memoryCheckIntervalMs)
  }

  #hardKill(backend: Backend, reason: TerminationReason): void {
    clearTimeout(backend.timers.grace)
    if (!this.#advance(backend, { status: 'hard-terminating', time: now(), termination_reason: reason, termination_kind: 'hard' })) return
    if (backend.process) backend.process.kill('SIGKILL')
    else this.#finish(backend, undefined)
  }

  #log(backend: Backend, stream: 'stdout' | 'stderr', text: string): void {
    const line: BackendLogLine = { backendId: backend.id, stream, text, time: now() }
    backend.logs.push(line)
    backend.logBytes += Buffer.byteLength(text)
    // Bounded in lines and in bytes: a chatty backend must not grow the server's memory.
    while (backend.logs.length > 0 && (backend.logs.length > this.#options.logLines || backend.logBytes > this.#options.logBytes)) {
      backend.logBytes -= Buffer.byteLength(backend.logs.shift()!.text)
    }
    this.#emit({ type: 'log', key: backend.key, line })
    backend.emitLog(line)
  }

  /** → terminated. `exit` is the exit code, 'failed' when it never started, undefined when it never ran. */
  #finish(backend: Backend, exit: number | 'failed' | undefined): void {
    const t = backend.timers
    clearTimeout(t.grace)
    clearTimeout(t.startup)
    clearInterval(t.memory)
    t.stopProbe?.()
    const last = backend.state
    const state: TerminatedState = { status: 'terminated', time: now() }
    if (last.status === 'terminating' || last.status === 'hard-terminating') {
      state.termination_reason = last.termination_reason
      state.termination_kind = last.termination_kind ?? ((last.status === 'terminating' ? 'soft' : 'hard') as TerminationKind)
    } else if (exit === 'failed') {
      state.termination_reason = 'internalerror'
    }
    if (exit !== undefined) state.exit_error = exit === 'failed' || exit !== 0
    if (!this.#advance(backend, state)) return
    if (this.#byKey.get(backend.key) === backend) this.#byKey.delete(backend.key)
    for (const token of backend.tokens) this.#grants.delete(token)
    backend.tokens.clear()
    this.#ended.push(backend.id)
    this.#endedLogBytes += backend.logBytes
    while (this.#ended.length > this.#options.keepEnded) {
      const id = this.#ended.shift()!
      this.#forgetLogs(this.#backends.get(id)!)
      this.#backends.delete(id)
    }
    // Ended backends' output is bounded in all: the oldest ones' output goes first.
    for (let i = 0; this.#endedLogBytes > this.#options.endedLogBytes && i < this.#ended.length; i++) {
      this.#forgetLogs(this.#backends.get(this.#ended[i]!)!)
    }
  }

  #forgetLogs(backend: Backend): void {
    this.#endedLogBytes -= backend.logBytes
    backend.logs.length = 0
    backend.logBytes = 0
  }

  #sweep(): void {
    const at = Date.now()
    for (const backend of this.#byKey.values()) {
      if (backend.ending || backend.status === 'scheduled') continue
      const idle = backend.input.maxIdleSeconds ?? this.#options.defaultMaxIdleSeconds
      const lifetime = backend.input.lifetimeSeconds
      const idleOut = idle > 0 && backend.status === 'ready' && backend.open === 0 && at - backend.lastActivity >= idle * 1000
      const expired = lifetime !== undefined && lifetime > 0 && at - backend.createdMs >= lifetime * 1000
      if (idleOut || expired) {
        this.message('info', expired ? 'lifetime limit reached' : `idle for ${idle} s`, backend.id)
        this.terminate(backend, false, 'swept')
      }
    }
  }
}
