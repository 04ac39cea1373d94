/**
 * One backend's status as an external store for React (`useSyncExternalStore`). Holds a lazy
 * BackendHandle: building one makes no request, so a store may be created during render, also on a
 * server. Following runs while React subscribes and stops one macrotask after the last
 * unsubscribe, so that StrictMode's unmount-and-mount keeps the one stream it opened instead of
 * aborting it and opening another (Chromium can hold an aborted stream open for seconds).
 */
import { BackendHandle } from '../status/handle.js'
import type { BackendState, ConnectResponse } from '../wire.js'

export class BackendStore {
  readonly handle: BackendHandle
  /** What a server render (and hydration) sees: the connect response's status. */
  readonly serverState: BackendState
  /** Seen `ready` at some point: a socket may stay open while the backend terminates, not start then. */
  wasReady: boolean
  readonly #listeners = new Set<() => void>()
  #off: (() => void) | undefined
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(response: ConnectResponse) {
    this.handle = new BackendHandle(response)
    this.serverState = this.handle.state
    this.wasReady = response.status === 'ready'
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener)
    clearTimeout(this.#timer)
    this.#off ??= this.handle.on('status', (state) => {
      if (state.status === 'ready') this.wasReady = true
      for (const notify of [...this.#listeners]) notify()
    })
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) {
        this.#timer = setTimeout(() => {
          if (this.#listeners.size > 0) return
          this.#off?.()
          this.#off = undefined
        }, 0)
      }
    }
  }

  readonly getState = (): BackendState => this.handle.state
}
