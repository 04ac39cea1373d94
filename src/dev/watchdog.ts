/**
 * The watchdog: a tiny `/bin/sh` process in a session of its own that reads the server's list of
 * live process groups (and its cgroup directory) from a pipe. When the pipe closes (the server
 * ended, however: close(), an exit, a signal, SIGKILL), it SIGKILLs every group still listed and
 * every process in the server's cgroups, then exits. Backends run in sessions of their own, so
 * nothing else ties them to the server.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import type { Socket } from 'node:net'

// Lines: `+<pgid>` / `-<pgid>` add and remove a group; `c<dir>` names the server's cgroup directory.
// On EOF: kill the groups, kill and remove the cgroups (once empty), exit.
const SCRIPT = `
trap '' INT TERM HUP PIPE
groups=' '
cg=''
while IFS= read -r line; do
  case $line in
    +*) groups="$groups\${line#+} " ;;
    -*) id=\${line#-}; case $groups in *" $id "*) groups="\${groups%% $id *} \${groups#* $id }" ;; esac ;;
    c*) cg=\${line#c} ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
if [ -n "$cg" ] && [ -d "$cg" ]; then
  for d in "$cg"/*/; do
    [ -d "$d" ] || continue
    echo 1 > "$d/cgroup.kill" 2>/dev/null || while read -r p; do kill -s KILL "$p" 2>/dev/null; done < "$d/cgroup.procs"
  done
  i=0
  while [ -d "$cg" ] && [ $i -lt 100 ]; do
    for d in "$cg"/*/; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    rmdir "$cg" 2>/dev/null || sleep 0.1
    i=$((i + 1))
  done
fi
`

/** The server's end of the watchdog. */
export class Watchdog {
  readonly #child: ChildProcess | undefined
  readonly #pipe: Socket | undefined
  #closed = false

  /** Starts the watchdog; `onError` hears (once) that it could not start. */
  constructor(onError: (message: string) => void) {
    let child: ChildProcess
    try {
      // detached: its own session, so the terminal's signals (Ctrl-C, hang-up) do not reach it.
      child = spawn('/bin/sh', ['-c', SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
    } catch (error) {
      onError(`no watchdog (${(error as Error).message}): backends may outlive a server that is killed`)
      return
    }
    this.#child = child
    this.#pipe = child.stdin as Socket
    child.on('error', (error) => {
      this.#closed = true
      onError(`no watchdog (${error.message}): backends may outlive a server that is killed`)
    })
    this.#pipe.on('error', () => {
      this.#closed = true
    })
    // Neither keeps the host process alive: the watchdog exists for when the host ends.
    child.unref()
    this.#pipe.unref()
  }

  /** Process group `pgid` is live: kill it if the server ends without saying otherwise. */
  add(pgid: number): void {
    this.#send(`+${pgid}`)
  }

  /** Process group `pgid` is gone (its id may be reused): forget it. */
  remove(pgid: number): void {
    this.#send(`-${pgid}`)
  }

  /** The server's cgroup directory: kill and remove its cgroups when the server ends. */
  cgroup(dir: string): void {
    if (!dir.includes('\n')) this.#send(`c${dir}`)
  }

  /** Ends the watchdog (it reaps whatever is still listed, normally nothing). */
  close(): void {
    if (this.#closed || !this.#pipe) return
    this.#closed = true
    this.#pipe.end()
  }

  #send(line: string): void {
    if (this.#closed || !this.#pipe || this.#child?.exitCode !== null) return
    this.#pipe.write(`${line}\n`)
  }
}
