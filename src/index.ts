export * from './errors.js'
export * from './wire.js'
export type { FetchLike } from './abort.js'
export * from './status/index.js'
