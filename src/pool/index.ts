/** The keyed pool: public face of `src/pool`. */
export { BackendPool } from './pool.js'
export type { BackendPoolOptions, BackendPoolStats, PoolConnectOptions, PoolConnectRequest, TimeToReady } from './pool.js'
