/**
 * `session-backends/dev`: the embedded local server, programmatically. The same v2 API as the
 * hosted platform, backends as local processes, and a proxy — for tests, examples and local
 * development without any account.
 */
export { startDevServer } from './server.js'
export type { DevServer } from './server.js'
export type { DevServerOptions } from './options.js'
export type { BackendLogLine, BackendSummary, DevEvent } from './registry.js'
