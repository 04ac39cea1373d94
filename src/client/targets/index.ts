/** The targets of the client: one file per kind of server. */
export type { JamsocketSummary, Target } from './target.js'
export { v2Target } from './v2.js'
export { planeTarget, withImageTag } from './plane.js'
