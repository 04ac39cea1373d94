/**
 * A raw two-way tunnel between two sockets (an upgraded connection, e.g. a WebSocket), which ends
 * when either side ends, as nginx's: once one side has sent FIN and what was queued for the other
 * side has been written, both sockets close. A client that goes away therefore never keeps a backend
 * connection open, even when the backend ignores the half-close.
 */
import type { Socket } from 'node:net'

/** After a FIN, how long the other side may take to accept what was queued for it before both close anyway. */
const FLUSH_MS = 10_000

/**
 * Joins `a` and `b`; `onClose` is called once, when both are closed. Returns a function that closes
 * the tunnel at once.
 */
export function tunnel(a: Socket, b: Socket, onClose: () => void): () => void {
  let closed = false
  let timer: NodeJS.Timeout | undefined
  const close = () => {
    if (closed) return
    closed = true
    if (timer !== undefined) clearTimeout(timer)
    a.destroy()
    b.destroy()
    onClose()
  }
  const relay = (from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause()
    })
    to.on('drain', () => from.resume())
    // FIN from one side: pass on what is queued, then close both, whatever the other side does.
    from.on('end', () => {
      if (closed || timer !== undefined) return
      timer = setTimeout(close, FLUSH_MS)
      timer.unref()
      to.end(close)
    })
  }
  relay(a, b)
  relay(b, a)
  a.on('error', close)
  b.on('error', close)
  a.on('close', close)
  b.on('close', close)
  a.setTimeout(0)
  b.setTimeout(0)
  a.setNoDelay(true)
  b.setNoDelay(true)
  return close
}
