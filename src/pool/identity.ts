import type { ConnectRequest } from '../wire.js'

/**
 * The single-flight key of a connect: its `key`, the identity (`user`, `auth`) the connection token
 * is minted for, and its `spawn` option. Two callers share a call only when all four match, so a
 * token is never handed to another identity, and a caller never gets the answer to another
 * caller's spawn option (`spawn: false`'s 409, or a spawn config it did not ask for). `auth` and
 * `spawn` are serialised with sorted keys so that `{a,b}` and `{b,a}` match.
 */
export function identityOf(request: ConnectRequest & { key: string }): string {
  return JSON.stringify([request.key, request.user ?? null, stableStringify(request.auth ?? null), stableStringify(request.spawn ?? null)])
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
