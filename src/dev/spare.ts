/**
 * A spare shell: `/bin/sh` started ahead of need in a fresh cgroup of its own, waiting on stdin for
 * the command it is to become. Why: moving a process into a cgroup makes the next program it runs
 * start later by about one RCU grace period (14 ms on this machine's kernel, a fifth of a Node
 * backend's start), and a backend must be in its cgroup before it runs anything. A spare pays that
 * before the backend is asked for; taking one costs a pipe write and an `exec`.
 *
 * Containment is as tight as the per-spawn wrapper's: the shell is in the cgroup before it reads
 * the command, so nothing the backend starts is ever outside it. A spare that outlives its server
 * reads end-of-file on stdin and exits; the watchdog also kills everything in the server's cgroups.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { resolve } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { type CgroupSet, removeCgroup } from './cgroup.js'
import { ENV_NAME } from './env.js'
import { randomName } from './respond.js'

/** The program, arguments, directory and whole environment a spare is to become. */
export interface SpareCommand {
  command: string
  args: readonly string[]
  cwd: string
  env: Record<string, string>
}

/**
 * Variables a shell sets or rewrites itself as it starts (dash and bash), or refuses to have
 * exported (bash's read-only ones). The usual wrapper is a starting shell, so a request that sets one
 * of these is started that way: the backend sees what it would have seen without a spare.
 */
const SHELL_NAMES = new Set(['PWD', 'OLDPWD', 'PPID', 'OPTIND', 'IFS', 'SHLVL', 'UID', 'EUID', 'GROUPS', 'LINENO', 'RANDOM', 'SECONDS', 'ENV', 'PS1', 'PS2', 'PS4', 'MAIL', 'MAILPATH', 'MAILCHECK', 'HISTFILE', 'HISTSIZE', 'FUNCNAME', 'SHELLOPTS', '_'])

/** One word for sh: single-quoted, so nothing in it is expanded. */
const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

/** A shell waiting in its cgroup. */
export class Spare {
  readonly child: ChildProcess
  /** The cgroup the shell is in: the backend's, once taken. */
  readonly cgroup: string
  /** True once the shell is in its cgroup (it said so on fd 3). */
  ready = false

  private constructor(child: ChildProcess, cgroup: string) {
    this.child = child
    this.cgroup = cgroup
  }

  /**
   * Starts a shell in the (new, empty) cgroup `cgroup`. `onGone` hears once that the shell exited
   * (or never started) while still a spare.
   */
  static start(cgroup: string, cwd: string, onGone: () => void): Spare | undefined {
    let child: ChildProcess
    try {
      // detached: a session and process group of its own, as every backend has. Its environment is
      // empty (a shell adds PWD): the backend's is given whole, on stdin, when it is taken.
      child = spawn('/bin/sh', ['-s'], { cwd, env: {}, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] })
    } catch {
      return undefined // spawn throws for some failures (ENOMEM) rather than emitting 'error'
    }
    const spare = new Spare(child, cgroup)
    const stdin = child.stdin as Writable
    stdin.on('error', () => {})
    const said = child.stdio[3] as Readable
    said.on('data', () => (spare.ready = true))
    said.on('error', () => {})
    const gone = () => {
      spare.ready = false
      onGone()
    }
    child.once('error', gone)
    child.once('exit', gone)
    // Its first line: enter the cgroup (or give up), say so on fd 3, close fd 3 (no backend gets it).
    stdin.write(`echo $$ > ${quote(`${cgroup}/cgroup.procs`)} 2>/dev/null || exit 97; echo >&3; exec 3>&-\n`)
    return spare
  }

  /**
   * Whether `command` can be run through a spare: no NUL anywhere (spawn refuses those itself), every
   * variable name one a shell can export (the server accepts no other), and none a shell sets itself.
   */
  static fits(command: SpareCommand): boolean {
    const words = [command.command, command.cwd, ...command.args, ...Object.values(command.env)]
    const names = Object.keys(command.env)
    return names.every((name) => ENV_NAME.test(name) && !SHELL_NAMES.has(name) && !name.startsWith('BASH')) && words.every((word) => !word.includes('\0'))
  }

  /**
   * Turns the shell into `command` (which must {@link Spare.fits}): `cd`, `export` each variable, then
   * `exec` with stdin from /dev/null, as a spawned backend has it. All of it goes over the pipe,
   * never on a command line, where any local user could read it. Its events are the child's from
   * here on (`exit` once the backend exits).
   */
  become(command: SpareCommand): void {
    this.child.removeAllListeners('exit').removeAllListeners('error')
    // The directory as spawn() would take it (relative to this process's), its physical path in PWD as
    // a starting shell sets it. cd exports OLDPWD, which a spawned process would not have. (A missing
    // directory is the shell's exit 126 here, where spawn() would fail: it is gone, either way.)
    let script = `cd -P -- ${quote(resolve(command.cwd))} || exit 126\nunset OLDPWD\n`
    for (const [name, value] of Object.entries(command.env)) script += `export ${name}=${quote(value)}\n`
    script += `exec ${[command.command, ...command.args].map(quote).join(' ')} </dev/null\n`
    ;(this.child.stdin as Writable).end(script)
  }

  /** Ends the shell (at once: SIGKILL); resolves once it has exited and its cgroup is removed. */
  discard(): Promise<void> {
    const child = this.child
    child.removeAllListeners('exit').removeAllListeners('error')
    child.on('error', () => {})
    const exited = child.exitCode !== null || child.signalCode !== null || child.pid === undefined ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
    ;(child.stdin as Writable).destroy()
    return exited.then(() => void removeCgroup(this.cgroup))
  }
}

/**
 * At most one spare shell per server, started when the server starts and again once the backend
 * that took the last one is ready (so that making it never competes with that backend's start).
 * Stops making spares when one fails to enter its cgroup or to start.
 */
export class SpareShells {
  readonly #cgroups: CgroupSet
  readonly #cwd: string
  #spare: Spare | undefined
  #broken = false
  #closed = false

  constructor(cgroups: CgroupSet, cwd: string) {
    this.#cgroups = cgroups
    this.#cwd = cwd
    this.refill()
  }

  /** True once a spare failed to start or to enter its cgroup: none are made after that. */
  get broken(): boolean {
    return this.#broken
  }

  /** True while a spare waits in its cgroup (one that exits is forgotten at once). */
  get ready(): boolean {
    return this.#spare?.ready === true
  }

  /** The waiting spare, if one is ready (it is no longer this pool's: become() or discard() it). */
  take(): Spare | undefined {
    const spare = this.#spare
    if (spare === undefined || !spare.ready) return undefined
    this.#spare = undefined
    return spare
  }

  /** Starts a spare when there is none. */
  refill(): void {
    if (this.#spare !== undefined || this.#broken || this.#closed) return
    const cgroup = this.#cgroups.make(`spare-${randomName(8)}`)
    if (cgroup === undefined) return
    const spare = Spare.start(cgroup, this.#cwd, () => {
      // It ended while waiting: something is wrong with spares here; spawn the slow way from now on.
      this.#broken = true
      if (this.#spare === spare) this.#spare = undefined
      removeCgroup(cgroup)
    })
    if (spare === undefined) {
      this.#broken = true
      removeCgroup(cgroup)
      return
    }
    this.#spare = spare
  }

  /** Ends the waiting spare (SIGKILL, at once) and makes no more; resolves once it is gone. */
  close(): Promise<void> {
    this.#closed = true
    const spare = this.#spare
    this.#spare = undefined
    return spare === undefined ? Promise.resolve() : spare.discard()
  }
}
