/** The Jamsocket client: public face of `src/client`. */
export { Jamsocket } from './jamsocket.js'
export type { JamsocketSummary } from './targets/index.js'
export { JAMSOCKET_API, JAMSOCKET_DEV_PORT } from './env.js'
export type { JamsocketEnv } from './env.js'
export type {
  JamsocketDevInitOptions,
  JamsocketPlaneInitOptions,
  JamsocketInitOptions,
  JamsocketOptions,
  JamsocketProdInitOptions,
  RequestOptions,
  RetryOptions,
  TerminateOptions,
} from './options.js'
