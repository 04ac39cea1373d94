/**
 * The options of {@link startDevServer}: one type, every field documented with its default, and the
 * validation that turns what a caller passed into the settings the server runs with.
 */
import { checkMs } from '../abort.js'
import { baseEnv, ENV_NAME } from './env.js'
import { randomToken, unbracket } from './respond.js'
import type { BackendLogLine, DevEvent } from './registry.js'

/** Options of the embedded local server. Only `command` is required. */
export interface DevServerOptions {
  /**
   * The backend's command and arguments, e.g. `['node', 'backend.mjs']`. Every backend is one run of
   * it, in its own process group.
   */
  command: readonly string[]
  /**
   * Working directory of the backends.
   * @default process.cwd()
   */
  cwd?: string | undefined
  /**
   * Variables given to every backend. A backend's environment is a small base taken from the
   * server's own (`PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`, `LANG`, `LANGUAGE`, `LC_*`, `TZ`,
   * `TMPDIR`, `TMP`, `TEMP`, `TERM`, `COLORTERM`, `NO_COLOR`), then these (`undefined` removes a
   * base variable), then the connect request's `spawn.executable.env`, then `PORT`, `HOST` and
   * `SESSION_BACKEND_*`. The rest of the server's environment (tokens, cloud keys) is not passed on.
   * @default {}
   */
  env?: Readonly<Record<string, string | undefined>> | undefined
  /**
   * Lets a connect request's `spawn.executable.env` set loader variables (`NODE_OPTIONS`,
   * `LD_PRELOAD`, `LD_*`, `DYLD_*`, `PATH`, `PYTHONPATH`, …). Off, such a request gets 400 naming
   * the variable: whoever can call the API could otherwise run any code as you.
   * @default false
   */
  allowLoaderEnv?: boolean | undefined
  /**
   * A credential the API requires (`Authorization: Bearer <apiToken>`) on every route but the
   * public ones (status, status stream, ready). When `host` is not a loopback address and none is
   * given, one is generated (see {@link DevServer.apiToken}): API access is code execution.
   * @default undefined (none on loopback)
   */
  apiToken?: string | undefined
  /**
   * Port of the API (`new Jamsocket({ dev: true, port })`); `0` picks a free one.
   * @default 8080
   */
  port?: number | undefined
  /**
   * Port of the proxy that serves `url` (`{proxyUrl}/{token}/…`); `0` picks a free one.
   * @default 9090
   */
  proxyPort?: number | undefined
  /**
   * Address both servers listen on. With the default, `[::1]` is listened on too when `localhost`
   * resolves to it, so that `http://localhost:{port}` works either way.
   * @default '127.0.0.1'
   */
  host?: string | undefined
  /**
   * Extra `Host` header names (without port) the servers accept besides `localhost`, `127.0.0.1`,
   * `[::1]` and `host`. Any other Host is refused with 403 (DNS rebinding protection).
   * @default []
   */
  allowedHosts?: readonly string[] | undefined
  /**
   * How long a soft-terminated backend may take to exit after SIGTERM before it gets SIGKILL.
   * @default 10000
   */
  graceMs?: number | undefined
  /**
   * How long a backend may take from start until it answers `HEAD /` before it is hard-terminated
   * with reason `startuptimeout`.
   * @default 300000
   */
  startupTimeoutMs?: number | undefined
  /**
   * Longest pause between two readiness probes of a starting backend (probes start 1 ms apart and
   * slow down to this as the start takes longer: a fiftieth of the time waited so far).
   * @default 10
   */
  probeIntervalMs?: number | undefined
  /**
   * Idle timeout when the connect request sets no `max_idle_seconds`, in seconds; `0` = never.
   * @default 300
   */
  defaultMaxIdleSeconds?: number | undefined
  /**
   * How often idle and lifetime limits are checked.
   * @default 1000
   */
  sweepIntervalMs?: number | undefined
  /**
   * Silence after which a status or log stream gets a `:` comment line, so proxies keep it open.
   * @default 15000
   */
  keepAliveMs?: number | undefined
  /**
   * How long `GET ready_url` waits before answering 202 (the caller then asks again).
   * @default 25000
   */
  readyWaitMs?: number | undefined
  /**
   * How long the proxy holds a request for a backend that is not ready yet before answering 504.
   * @default 60000
   */
  holdMs?: number | undefined
  /**
   * Deadline for a whole request head on the proxy, from its first byte; a client still sending its
   * head after this gets 408 and is disconnected (a byte every few seconds cannot keep a connection).
   * @default 30000
   */
  proxyHeadTimeoutMs?: number | undefined
  /**
   * Most client connections the proxy holds open at once; further ones are closed as they arrive, so
   * that connections through the proxy cannot use up the server's file descriptors.
   * @default 4096
   */
  proxyMaxConnections?: number | undefined
  /**
   * Largest API request body, in bytes; a larger one gets 413.
   * @default 1048576
   */
  maxBodyBytes?: number | undefined
  /**
   * Where per-key data directories (`spawn.executable.mount`) are created.
   * @default '.dev-data' (relative to `cwd`)
   */
  dataDir?: string | undefined
  /**
   * How often the limits the kernel does not enforce here are checked: a backend's memory against
   * `resource_limits.memory_limit_bytes`, its CPU time (with a cgroup) against `cpu_time_limit`.
   * @default 1000
   */
  memoryCheckIntervalMs?: number | undefined
  /**
   * Output lines kept per backend for `logs/stream` replay.
   * @default 1000
   */
  logLines?: number | undefined
  /**
   * Bytes of output kept per backend for `logs/stream` replay (UTF-8; oldest lines dropped first,
   * like {@link logLines}).
   * @default 1048576
   */
  logBytes?: number | undefined
  /**
   * Bytes of output kept in all, across ended backends: past it, the output of the backends that
   * ended first is forgotten (their status and info stay).
   * @default 16777216
   */
  endedLogBytes?: number | undefined
  /**
   * Ended backends kept for `status`, `info` and stream replay (oldest forgotten first).
   * @default 1000
   */
  keepEnded?: number | undefined
  /**
   * On SIGINT, SIGTERM or SIGHUP, when the host process has no handler of its own for that signal:
   * close the server (terminating every backend), then end the process with the signal as it would
   * have ended without this server. A host with its own handler decides itself when to close. Either
   * way, a watchdog process kills the backends if the host ends without closing (even on SIGKILL).
   * @default true
   */
  handleSignals?: boolean | undefined
  /**
   * Called for every lifecycle change, output line and server message (the CLI's terminal UI
   * listens here). Must not throw.
   * @default undefined
   */
  onEvent?: ((event: DevEvent) => void) | undefined
}

/** The settings the server runs with. @internal */
export interface ResolvedDevOptions {
  command: string
  args: string[]
  cwd: string
  /** The base environment (from the server's) with `env` applied. */
  env: Readonly<Record<string, string>>
  allowLoaderEnv: boolean
  handleSignals: boolean
  apiToken: string | undefined
  port: number
  proxyPort: number
  host: string
  allowedHosts: string[]
  graceMs: number
  startupTimeoutMs: number
  probeIntervalMs: number
  defaultMaxIdleSeconds: number
  sweepIntervalMs: number
  keepAliveMs: number
  readyWaitMs: number
  holdMs: number
  proxyHeadTimeoutMs: number
  proxyMaxConnections: number
  maxBodyBytes: number
  dataDir: string
  memoryCheckIntervalMs: number
  logLines: number
  logBytes: number
  endedLogBytes: number
  keepEnded: number
  onEvent: ((event: DevEvent | { type: 'log'; line: BackendLogLine }) => void) | undefined
}

function checkPort(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    throw new RangeError(`${name} must be an integer from 0 to 65535, got ${String(value)}`)
  }
  return value
}

function checkCount(name: string, value: number | undefined, fallback: number, min = 0): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  return value
}

function ms(name: string, value: number | undefined, fallback: number): number {
  checkMs(name, value)
  return value ?? fallback
}

/** True for an address only this machine can reach (the API needs no credential there). */
function isLoopback(host: string): boolean {
  const bare = unbracket(host).toLowerCase()
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare) || /^::ffff:127\./.test(bare)
}

/** Validates and fills in defaults. Throws TypeError/RangeError with a short message. @internal */
export function resolveDevOptions(options: DevServerOptions): ResolvedDevOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('startDevServer: options must be an object')
  const command = options.command
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string') || command[0] === '') {
    throw new TypeError('startDevServer: command must be a non-empty array of strings, e.g. ["node", "backend.mjs"]')
  }
  const idle = options.defaultMaxIdleSeconds ?? 300
  if (typeof idle !== 'number' || !Number.isFinite(idle) || idle < 0) {
    throw new RangeError(`defaultMaxIdleSeconds must be a number >= 0, got ${String(idle)}`)
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('onEvent must be a function')
  const cwd = options.cwd ?? process.cwd()
  const env = baseEnv(process.env)
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!ENV_NAME.test(name)) throw new RangeError(`env: ${JSON.stringify(name)} is not a valid variable name`)
    if (value === undefined) delete env[name]
    else if (typeof value !== 'string') throw new TypeError(`env.${name} must be a string or undefined`)
    else env[name] = value
  }
  if (options.apiToken !== undefined && (typeof options.apiToken !== 'string' || !/^[\x21-\x7e]{16,}$/.test(options.apiToken))) {
    throw new RangeError('apiToken must be at least 16 printable ASCII characters without spaces')
  }
  return {
    command: command[0]!,
    args: command.slice(1),
    cwd,
    env,
    allowLoaderEnv: options.allowLoaderEnv === true,
    handleSignals: options.handleSignals !== false,
    apiToken: options.apiToken ?? (isLoopback(options.host ?? '127.0.0.1') ? undefined : randomToken()),
    port: checkPort('port', options.port, 8080),
    proxyPort: checkPort('proxyPort', options.proxyPort, 9090),
    host: options.host ?? '127.0.0.1',
    allowedHosts: [...(options.allowedHosts ?? [])].map((h) => h.toLowerCase()),
    graceMs: ms('graceMs', options.graceMs, 10_000),
    startupTimeoutMs: ms('startupTimeoutMs', options.startupTimeoutMs, 300_000),
    probeIntervalMs: ms('probeIntervalMs', options.probeIntervalMs, 10),
    defaultMaxIdleSeconds: idle,
    sweepIntervalMs: Math.max(1, ms('sweepIntervalMs', options.sweepIntervalMs, 1000)),
    keepAliveMs: Math.max(1, ms('keepAliveMs', options.keepAliveMs, 15_000)),
    readyWaitMs: ms('readyWaitMs', options.readyWaitMs, 25_000),
    holdMs: ms('holdMs', options.holdMs, 60_000),
    proxyHeadTimeoutMs: Math.max(1, ms('proxyHeadTimeoutMs', options.proxyHeadTimeoutMs, 30_000)),
    proxyMaxConnections: checkCount('proxyMaxConnections', options.proxyMaxConnections, 4096, 1),
    maxBodyBytes: checkCount('maxBodyBytes', options.maxBodyBytes, 1_048_576, 1),
    dataDir: options.dataDir ?? '.dev-data',
    memoryCheckIntervalMs: Math.max(1, ms('memoryCheckIntervalMs', options.memoryCheckIntervalMs, 1000)),
    logLines: checkCount('logLines', options.logLines, 1000),
    logBytes: checkCount('logBytes', options.logBytes, 1_048_576),
    endedLogBytes: checkCount('endedLogBytes', options.endedLogBytes, 16_777_216),
    keepEnded: checkCount('keepEnded', options.keepEnded, 1000),
    onEvent: options.onEvent as ResolvedDevOptions['onEvent'],
  }
}
