/**
 * A clean shutdown: a soft terminate sends SIGTERM, then SIGKILL once the grace period is over. The
 * cleanups registered here run on the first SIGTERM (or SIGINT, for Ctrl-C when run by hand), and
 * the process exits as soon as they settle: code 0 when all succeeded, 1 when one failed or ran past
 * its time limit, so the backend ends with `exit_error` telling the truth.
 */

/** Options of {@link onTerminate}. */
export interface OnTerminateOptions {
  /**
   * The longest time this cleanup may take. Past it the process exits with code 1 without waiting
   * longer, so that it ends before the grace period does (10 s locally and as Jamsocket documents it;
   * Plane's own is 30 s) and a SIGKILL cuts the cleanup off mid-write.
   * @default 8000
   */
  timeoutMs?: number | undefined
}

/** A cleanup: may return a promise; gets the signal that started the shutdown. */
export type TerminateCleanup = (signal: NodeJS.Signals) => unknown

interface Entry {
  cleanup: TerminateCleanup
  timeoutMs: number
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
const entries = new Set<Entry>()
let shuttingDown = false

function runOne(entry: Entry, signal: NodeJS.Signals): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      console.error(`onTerminate: a cleanup did not settle within ${entry.timeoutMs} ms; exiting`)
      resolve(false)
    }, entry.timeoutMs)
    const done = (ok: boolean) => {
      clearTimeout(timer)
      resolve(ok)
    }
    // Promise.try semantics: a cleanup that throws synchronously counts as a failed one.
    new Promise<unknown>((r) => r(entry.cleanup(signal))).then(
      () => done(true),
      (error: unknown) => {
        console.error('onTerminate: a cleanup failed:', error)
        done(false)
      },
    )
  })
}

function onSignal(signal: NodeJS.Signals): void {
  // The server may signal again (or a user press Ctrl-C twice): the shutdown under way goes on.
  if (shuttingDown) return
  shuttingDown = true
  void Promise.all([...entries].map((entry) => runOne(entry, signal))).then((results) => {
    process.exit(results.every(Boolean) ? 0 : 1)
  })
}

/**
 * Runs `cleanup` (save state, close sockets) when the process gets SIGTERM (a soft terminate) or
 * SIGINT, then exits once every registered cleanup has settled: with code 0 when all succeeded, 1
 * when one threw, rejected or ran past `timeoutMs`. Returns a function that unregisters it; with
 * none left, the signals get Node's default behaviour back.
 *
 * ```ts
 * onTerminate(async () => { await writeFile(stateFile, JSON.stringify(state)) })
 * ```
 */
export function onTerminate(cleanup: TerminateCleanup, options: OnTerminateOptions = {}): () => void {
  if (typeof cleanup !== 'function') throw new TypeError('onTerminate() needs a cleanup function')
  const timeoutMs = options.timeoutMs ?? 8000
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > 2_147_483_647) {
    throw new RangeError('onTerminate() timeoutMs must be a number of milliseconds from 0 to 2147483647')
  }
  const entry: Entry = { cleanup, timeoutMs }
  if (entries.size === 0) for (const signal of SIGNALS) process.on(signal, onSignal)
  entries.add(entry)
  return () => {
    if (!entries.delete(entry) || entries.size > 0 || shuttingDown) return
    for (const signal of SIGNALS) process.off(signal, onSignal)
  }
}
