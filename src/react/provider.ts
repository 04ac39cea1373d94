/**
 * `SessionBackendProvider` and its hooks: one status stream per provider, read through
 * `useSyncExternalStore`. Nothing happens at render time but building a lazy handle, so server
 * rendering makes no request.
 */
import { createContext, createElement, useContext, useMemo, useSyncExternalStore, type ReactNode } from 'react'
import { JamsocketError } from '../errors.js'
import type { BackendHandle } from '../status/handle.js'
import type { BackendState, ConnectResponse } from '../wire.js'
import { BackendStore } from './store.js'

const StoreContext = createContext<BackendStore | null>(null)

/** Props of {@link SessionBackendProvider}. */
export interface SessionBackendProviderProps {
  /** What the server's `connect()` returned (the plain JSON: `JSON.stringify(handle)`). */
  connectResponse: ConnectResponse
  children?: ReactNode
}

/**
 * Follows the backend of `connectResponse` while mounted: one status stream, closed on unmount and
 * when `connectResponse` names another backend. Children render at once (also on a server).
 */
export function SessionBackendProvider({ connectResponse, children }: SessionBackendProviderProps): ReactNode {
  const { backend_id: id, status_url: statusUrl } = connectResponse
  // Keyed by the backend, not the object: a parent re-rendering with an equal response keeps the stream.
  const store = useMemo(() => new BackendStore(connectResponse), [id, statusUrl])
  return createElement(StoreContext.Provider, { value: store }, children)
}

/** @internal The provider's store; throws outside one. */
export function useBackendStore(hook: string): BackendStore {
  const store = useContext(StoreContext)
  if (!store) throw new JamsocketError(`${hook} must be used within a SessionBackendProvider`)
  return store
}

/** The provider's {@link BackendHandle} (events, `state`, `waitUntilReady()`). */
export function useSessionBackend(): BackendHandle {
  return useBackendStore('useSessionBackend').handle
}

/** The latest status; re-renders on every new one. On a server: the connect response's status. */
export function useStatus(): BackendState {
  const store = useBackendStore('useStatus')
  return useSyncExternalStore(store.subscribe, store.getState, () => store.serverState)
}

/**
 * True while the backend is ready: false before, false again from `terminating` on, and false on a
 * server (so server HTML and hydration agree, whatever the status).
 */
export function useReady(): boolean {
  const store = useBackendStore('useReady')
  return useSyncExternalStore(store.subscribe, () => store.getState().status === 'ready', () => false)
}
