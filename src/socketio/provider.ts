/**
 * `SocketIOProvider` and its hooks: a socket.io connection to the backend, opened once it is ready
 * and closed at `terminated` and on unmount; sends before that are queued and delivered in order.
 */
import { createContext, createElement, useContext, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react'
import type { Socket } from 'socket.io-client'
import { JamsocketError } from '../errors.js'
import { useBackendStore } from '../react/provider.js'
import { isEnding } from '../wire.js'
import { SocketHub, type SocketIOOptions } from './hub.js'

const HubContext = createContext<SocketHub | null>(null)

// A layout effect where there is a DOM (the latest callback is in place before any event can
// arrive), a plain one on a server, where neither runs and React < 18.3 would warn about the former.
const useLatestEffect = (globalThis as { document?: unknown }).document === undefined ? useEffect : useLayoutEffect

/** Props of {@link SocketIOProvider}. */
export interface SocketIOProviderProps {
  /** The backend's URL (`connectResponse.url`): socket.io connects to its origin, path `{path}/socket.io/`. */
  url: string
  children?: ReactNode
  /**
   * Options for socket.io-client's `io()` (e.g. `auth`, `transports`), read when the socket is
   * created; they override the provider's `path` and `forceNew: true`.
   * @default {}
   */
  options?: SocketIOOptions
}

/**
 * A socket.io connection to the backend of the enclosing {@link SessionBackendProvider}: opened
 * once the backend is ready, kept while it terminates, closed at `terminated` (with reconnection
 * turned off from `terminating` on) and on unmount.
 */
export function SocketIOProvider({ url, children, options }: SocketIOProviderProps): ReactNode {
  const store = useBackendStore('SocketIOProvider')
  const { status } = useSyncExternalStore(store.subscribe, store.getState, () => store.serverState)
  const [hub] = useState(() => new SocketHub())
  const optionsRef = useRef(options)
  optionsRef.current = options
  const live = status === 'ready' || (isEnding(status) && status !== 'terminated' && store.wasReady)
  useEffect(() => {
    if (!live) return
    hub.open(url, optionsRef.current)
    return () => hub.close()
  }, [hub, url, live])
  useEffect(() => {
    hub.ending = isEnding(status)
    if (hub.ending) hub.socket?.io.reconnection(false)
  }, [hub, status])
  return createElement(HubContext.Provider, { value: hub }, children)
}

function useHub(hook: string): SocketHub {
  const hub = useContext(HubContext)
  if (!hub) throw new JamsocketError(`${hook} must be used within a SocketIOProvider`)
  return hub
}

/**
 * A function that sends `event` with `args` to the backend; its identity is stable. Before the
 * socket is connected, messages are kept and delivered once it is, in order, exactly as given
 * (binary included). Messages sent once the backend is going and no socket is open are dropped.
 */
export function useSend<T = unknown>(): (event: string, ...args: T[]) => void {
  return useHub('useSend').send
}

/**
 * Calls the latest `callback` for every `event` from the backend, without re-subscribing when the
 * callback changes. Listening starts at mount, before the socket exists.
 */
export function useEventListener<T = any>(event: string, callback: (...args: T[]) => void): void {
  const hub = useHub('useEventListener')
  const ref = useRef(callback)
  useLatestEffect(() => {
    ref.current = callback
  })
  useEffect(() => hub.listen(event, ref), [hub, event])
}

/** The socket, or null before the backend is ready, after it terminated, and on a server. */
export function useSocket(): Socket | null {
  const hub = useHub('useSocket')
  return useSyncExternalStore(hub.subscribe, hub.getSocket, () => null)
}
