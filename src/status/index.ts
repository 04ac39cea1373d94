/** Status following: the BackendHandle, the shared StatusFeed and the SSE reader underneath. */
export { BackendHandle } from './handle.js'
export type { BackendHandleOptions, BackendHandleEvents, BackendHandleEvent, StateOf, TerminatedEvent, WaitUntilReadyOptions } from './handle.js'
export { StatusFeed, statusStreamUrl } from './feed.js'
export type { StatusFeedOptions, ReconnectOptions, FeedEvent, FeedListener } from './feed.js'
export { timingsOf } from './timings.js'
export type { BackendTimings, PhaseTiming } from './timings.js'
