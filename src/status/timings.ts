/**
 * Where a backend's time went, from its status history. Pure functions over server timestamps:
 * every figure here is a difference of two times from the same server clock, never mixed with the
 * client's. Imports nothing from `node:*`.
 */
import type { BackendState, BackendStatus } from '../wire.js'

/** One phase: the time from reaching `status` until the next status reached. */
export interface PhaseTiming {
  status: BackendStatus
  /** Milliseconds from this status to the next one reached (server clock). */
  ms: number
}

/** How long each phase of a backend took, from the server's timestamps. */
export interface BackendTimings {
  /**
   * Milliseconds from the first status seen to `ready` (server clock); absent when `ready` was not
   * reached (yet, or ever).
   */
  readyMs?: number
  /**
   * One entry per reached status except the latest, in order, each with the time until the next
   * reached status. Skipped statuses have no entry: their time belongs to the phase before.
   */
  phases: PhaseTiming[]
  /**
   * Milliseconds on this client's own clock from sending the connect request to seeing `ready`.
   * Only on handles returned by `connect()` (or `pool.connect()`), once they saw `ready`.
   */
  requestToReadyMs?: number
}

/**
 * The timings of a status history (as {@link BackendHandle.history} or
 * `BackendTerminatedError.history` give it): phases between consecutive statuses and the time to
 * `ready`. Only what was reached is given.
 */
export function timingsOf(history: readonly BackendState[]): BackendTimings {
  const phases: PhaseTiming[] = []
  let previous: BackendState | undefined
  let previousMs = 0
  let readyMs: number | undefined
  const firstMs = history.length > 0 ? Date.parse(history[0]!.time) : 0
  for (const state of history) {
    const ms = Date.parse(state.time)
    if (previous) phases.push({ status: previous.status, ms: ms - previousMs })
    if (state.status === 'ready') readyMs = ms - firstMs
    previous = state
    previousMs = ms
  }
  return readyMs === undefined ? { phases } : { readyMs, phases }
}
