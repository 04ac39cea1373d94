export { BackendHandle } from './handle.js'
export type { BackendHandleOptions } from './handle.js'
