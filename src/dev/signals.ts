/**
 * Ending on a signal without leaving backends behind. Node's default action for SIGINT, SIGTERM and
 * SIGHUP ends the process at once ('exit' handlers do not run), and backends live in sessions of
 * their own, so the terminal's signal never reaches them. While a local server is open, one handler
 * per signal closes every open server, then raises the signal again with no handler left, so that
 * the host ends exactly as it would have. A host that handles the signal itself is left in charge
 * (it decides when to close; the watchdog covers it if it just exits).
 */

export const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** What the handler needs of a server. */
export interface Closable {
  close(): Promise<void>
  /** A second signal during the close: kill at once rather than wait out the grace period. */
  hurry(): void
}

const open = new Set<Closable>()
let ending = false

function onSignal(signal: NodeJS.Signals): void {
  if (process.listeners(signal).some((listener) => listener !== onSignal)) return
  if (ending) {
    for (const server of open) server.hurry()
    return
  }
  ending = true
  void Promise.allSettled([...open].map((server) => server.close())).then(() => {
    for (const s of SIGNALS) process.off(s, onSignal)
    process.kill(process.pid, signal)
  })
}

/** Closes `server` on SIGINT/SIGTERM/SIGHUP (see above). Returns the function that stops that. */
export function closeOnSignals(server: Closable): () => void {
  if (open.size === 0) for (const signal of SIGNALS) process.on(signal, onSignal)
  open.add(server)
  return () => {
    open.delete(server)
    if (open.size === 0 && !ending) for (const signal of SIGNALS) process.off(signal, onSignal)
  }
}
