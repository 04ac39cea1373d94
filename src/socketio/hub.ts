/**
 * The socket of one SocketIOProvider, outside React: created when the backend is ready, the send
 * queue before that, and one `socket.on` per event name that dispatches to every mounted listener.
 * Disposal waits one macrotask so that StrictMode's unmount-and-mount keeps the socket it made
 * (a socket closed at once still leaves a half-open engine session at the server).
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client'
import { callEach } from '../status/feed.js'

/** Options passed to socket.io-client's `io()`, over the ones the provider sets (`path`, `forceNew`). */
export type SocketIOOptions = Partial<ManagerOptions & SocketOptions>

/** A listener's latest callback (the hook updates it on every render). */
export interface ListenerRef {
  current: (...args: any[]) => void
}

export class SocketHub {
  socket: Socket | null = null
  /** Messages sent before the socket exists, in order, as given. */
  readonly #queue: unknown[][] = []
  readonly #listeners = new Map<string, Set<ListenerRef>>()
  readonly #dispatchers = new Map<string, (...args: unknown[]) => void>()
  readonly #subscribers = new Set<() => void>()
  #url: string | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  /** The backend is going: nothing more will connect, so sends without a socket are dropped. */
  ending = false

  /** Stable for the hub's life: what `useSend()` returns. */
  readonly send = (event: string, ...args: unknown[]): void => {
    if (this.socket) this.socket.emit(event, ...args)
    else if (!this.ending) this.#queue.push([event, ...args])
  }

  /** Opens (or keeps, when already open to `url`) the socket; sends what was queued, in order. */
  open(url: string, options: SocketIOOptions | undefined): void {
    clearTimeout(this.#timer)
    if (this.socket && this.#url === url) return
    this.#close()
    // `io(url)` would take the URL's path (the token) as a namespace: connect to the origin and put
    // the path in `path`, where the proxy strips the token (as @jamsocket/socketio does).
    const { origin, pathname } = new URL(url)
    const socket = io(origin, { path: `${pathname.replace(/\/$/, '')}/socket.io/`, forceNew: true, ...options })
    for (const [event, dispatch] of this.#dispatchers) socket.on(event, dispatch)
    // Into socket.io's own buffer, which it flushes on connect before any 'connect' handler runs.
    for (const [event, ...args] of this.#queue.splice(0)) socket.emit(event as string, ...args)
    this.socket = socket
    this.#url = url
    this.#notify()
  }

  /** Closes the socket one macrotask from now unless {@link open} keeps it; `now` closes at once. */
  close(now = false): void {
    clearTimeout(this.#timer)
    if (now) this.#close()
    else this.#timer = setTimeout(() => this.#close(), 0)
  }

  /** Adds a listener for `event` (before or after the socket exists); returns its removal. */
  listen(event: string, ref: ListenerRef): () => void {
    let refs = this.#listeners.get(event)
    if (!refs) {
      const set = (refs = new Set())
      this.#listeners.set(event, set)
      const dispatch = (...args: unknown[]) => callEach(Array.from(set, (r) => () => r.current(...args)), undefined)
      this.#dispatchers.set(event, dispatch)
      this.socket?.on(event, dispatch)
    }
    refs.add(ref)
    return () => {
      refs.delete(ref)
      if (refs.size > 0 || this.#listeners.get(event) !== refs) return
      this.socket?.off(event, this.#dispatchers.get(event))
      this.#listeners.delete(event)
      this.#dispatchers.delete(event)
    }
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#subscribers.add(listener)
    return () => void this.#subscribers.delete(listener)
  }

  readonly getSocket = (): Socket | null => this.socket

  #close(): void {
    const socket = this.socket
    if (this.ending) this.#queue.length = 0
    if (!socket) return
    this.socket = null
    this.#url = undefined
    socket.disconnect()
    this.#notify()
  }

  #notify(): void {
    for (const listener of [...this.#subscribers]) listener()
  }
}
