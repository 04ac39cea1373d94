/** The Jamsocket client: public face of `src/client`. */
export { Jamsocket } from './jamsocket.js'
export type { JamsocketSummary } from './jamsocket.js'
export { JAMSOCKET_API, JAMSOCKET_DEV_PORT } from './env.js'
export type { JamsocketEnv } from './env.js'
export type {
  JamsocketDevInitOptions,
  JamsocketInitOptions,
  JamsocketOptions,
  JamsocketProdInitOptions,
  RequestOptions,
  RetryOptions,
  TerminateOptions,
} from './options.js'
