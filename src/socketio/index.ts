'use client'
/**
 * `session-backends/socketio`: `SocketIOProvider` and hooks, compatible with `@jamsocket/socketio`
 * (plus `useSocket`). Re-exports `session-backends/react`. Needs the `socket.io-client` peer (4.x).
 */
export * from '../react/index.js'
export { SocketIOProvider, useSend, useEventListener, useSocket } from './provider.js'
export type { SocketIOProviderProps } from './provider.js'
export type { SocketIOOptions } from './hub.js'
