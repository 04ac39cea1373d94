'use client'
/**
 * `session-backends/react`: `SessionBackendProvider` and hooks, compatible with `@jamsocket/react`
 * (plus `useStatus` and `useSessionBackend`). Re-exports `session-backends/client`.
 */
export * from '../browser/index.js'
export { SessionBackendProvider, useReady, useStatus, useSessionBackend } from './provider.js'
export type { SessionBackendProviderProps } from './provider.js'
