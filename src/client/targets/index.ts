/** The targets of the client: one file per kind of server. */
export type { JamsocketSummary, Target, TargetKind } from './target.js'
export { v2Target, type V2Config } from './v2.js'
export { planeTarget, withImageTag, PLANE_INT_MAX } from './plane.js'
