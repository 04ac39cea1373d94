/**
 * The terminal UI of `session-backends dev`, like `jamsocket dev`: every backend's output prefixed
 * with its id and coloured per backend, and on a TTY a live table of backends (id, key, status,
 * ready in, age) redrawn in place under the scrolling output; a backend much slower to get ready
 * than the others is shown in red. Plain, uncoloured lines when not a TTY.
 */
import type { WriteStream } from 'node:tty'
import type { BackendStatus } from '../wire.js'
import type { BackendSummary, DevEvent } from './registry.js'

// C0 controls but tab, plus DEL and the C1 range (ESC-less CSI). Output lines are split at LF
// already; CR is here too, so that a line cannot return to its start and overwrite its prefix.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g
// In keys and server messages (one line each), tab too: nothing may start a line or move across one.
const CONTROL_INLINE = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g

const COLOURS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92] // cyan, yellow, magenta, green, blue, bright …
const STATUS_COLOURS: Partial<Record<BackendStatus, number>> = { ready: 32, terminating: 33, 'hard-terminating': 31, terminated: 90 }
const REDRAW_MS = 250
const ENDED_SHOWN_MS = 10_000

/** Milliseconds as `425ms` or `1.85s`. */
function duration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`
}

/** Much slower than the median of the others shown (with at least three to compare). */
function isSlow(ms: number, all: number[]): boolean {
  if (all.length < 3) return false
  const sorted = [...all].sort((a, b) => a - b)
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!
  return ms > 2 * median && ms - median > 200
}

function age(fromIso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(fromIso)) / 1000))
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}

/** Writes server events to a terminal (or a pipe). */
export class TerminalUi {
  readonly #out: NodeJS.WritableStream
  readonly #tty: boolean
  readonly #backends = new Map<string, { summary: BackendSummary; colour: number; endedAt?: number; readyMs?: number }>()
  #tableLines = 0
  #timer: NodeJS.Timeout | undefined
  #next = 0

  constructor(out: NodeJS.WritableStream = process.stdout, tty = Boolean((out as WriteStream).isTTY) && !process.env.NO_COLOR) {
    this.#out = out
    this.#tty = tty
    if (tty) {
      this.#timer = setInterval(() => this.#redraw(), REDRAW_MS)
      this.#timer.unref()
    }
  }

  /** A line from the server itself (startup banner, warnings). */
  info(text: string): void {
    this.#print(this.#tty ? `\x1b[1m${text}\x1b[0m` : text)
  }

  /** Takes one event of the server's `onEvent`. */
  handle(event: DevEvent): void {
    if (event.type === 'status') {
      const entry = this.#entry(event.backend)
      entry.summary = event.backend
      if (event.state.status === 'terminated') entry.endedAt = Date.now()
      // Server times on both sides: scheduled (createdAt) to ready.
      if (event.state.status === 'ready') entry.readyMs = Date.parse(event.state.time) - Date.parse(event.backend.createdAt)
      const reason = 'termination_reason' in event.state && event.state.termination_reason ? ` (${event.state.termination_reason})` : ''
      const exit = event.state.status === 'terminated' && event.state.exit_error ? ' exit_error' : ''
      const scheduled = event.state.status === 'scheduled'
      const key = scheduled ? ` key=${event.backend.key.replace(CONTROL_INLINE, '�')}` : ''
      const image = scheduled && event.backend.image ? ` image=${event.backend.image.replace(CONTROL_INLINE, '�')}` : ''
      this.#line(entry.summary.id, entry.colour, `${event.state.status}${reason}${exit}${key}${image}`, true)
    } else if (event.type === 'log') {
      const entry = this.#backends.get(event.line.backendId)
      this.#line(event.line.backendId, entry?.colour ?? 37, event.line.text, false, event.line.stream === 'stderr')
    } else {
      // Messages can quote what a request sent (a path, a name): one line, no control characters.
      const clean = event.text.replace(CONTROL_INLINE, '�')
      const text = event.backendId ? `[${event.backendId}] ${clean}` : clean
      this.#print(this.#tty && event.level !== 'info' ? `\x1b[${event.level === 'error' ? 31 : 33}m${text}\x1b[0m` : text)
    }
  }

  /** Stops redrawing and leaves the last table on screen. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  #entry(summary: BackendSummary) {
    let entry = this.#backends.get(summary.id)
    if (!entry) {
      entry = { summary, colour: COLOURS[this.#next++ % COLOURS.length]! }
      this.#backends.set(summary.id, entry)
    }
    return entry
  }

  #line(id: string, colour: number, raw: string, status: boolean, stderr = false): void {
    // Backend output and request keys are not ours: their control characters (escape sequences
    // that move the cursor, clear the screen, set the title) must not reach the terminal.
    const text = raw.replace(CONTROL, '�')
    if (!this.#tty) return this.#print(`[${id}] ${status ? `status: ${text}` : text}`)
    const body = status ? `\x1b[2m→ ${text}\x1b[0m` : stderr ? `\x1b[31m${text}\x1b[0m` : text
    this.#print(`\x1b[${colour}m[${id}]\x1b[0m ${body}`)
  }

  // On a TTY the table sits below the output: erase it, print the line, draw it again.
  #print(text: string): void {
    if (!this.#tty) {
      this.#out.write(`${text}\n`)
      return
    }
    this.#out.write(`${this.#erase()}${text}\n${this.#table()}`)
  }

  #redraw(): void {
    if (this.#backends.size === 0 && this.#tableLines === 0) return
    this.#out.write(this.#erase() + this.#table())
  }

  #erase(): string {
    const n = this.#tableLines
    this.#tableLines = 0
    return n === 0 ? '' : `\x1b[${n}A\x1b[0J`
  }

  #table(): string {
    const now = Date.now()
    for (const [id, entry] of this.#backends) if (entry.endedAt !== undefined && now - entry.endedAt > ENDED_SHOWN_MS) this.#backends.delete(id)
    if (this.#backends.size === 0) return ''
    const readies = [...this.#backends.values()].flatMap((entry) => (entry.readyMs === undefined ? [] : [entry.readyMs]))
    const rows = [...this.#backends.values()].map(({ summary, colour, readyMs }) => {
      const statusColour = STATUS_COLOURS[summary.status] ?? 37
      const clean = summary.key.replace(CONTROL_INLINE, '�')
      const key = clean.length > 24 ? `${clean.slice(0, 23)}…` : clean
      const readyText = (readyMs === undefined ? '–' : duration(readyMs)).padEnd(8)
      const ready = readyMs !== undefined && isSlow(readyMs, readies) ? `\x1b[1;31m${readyText}\x1b[0m` : readyText
      return `\x1b[${colour}m${summary.id}\x1b[0m  ${key.padEnd(24)}  \x1b[${statusColour}m${summary.status.padEnd(16)}\x1b[0m  ${ready}  ${age(summary.createdAt, now)}`
    })
    const lines = [`\x1b[2m${'backend'.padEnd(14)}  ${'key'.padEnd(24)}  ${'status'.padEnd(16)}  ${'ready in'.padEnd(8)}  age\x1b[0m`, ...rows]
    this.#tableLines = lines.length
    return `${lines.join('\n')}\n`
  }
}
