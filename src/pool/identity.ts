import type { ConnectRequest } from '../wire.js'

/**
 * The single-flight key of a connect: its `key` plus the identity (`user`, `auth`) the connection
 * token is minted for. Two callers share a call only when all three match, so a token is never
 * handed to another identity. `auth` is serialised with sorted keys so that `{a,b}` and `{b,a}` match.
 */
export function identityOf(request: ConnectRequest & { key: string }): string {
  return JSON.stringify([request.key, request.user ?? null, stableStringify(request.auth ?? null)])
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
    const sorted: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k]
    return sorted
  })
}
