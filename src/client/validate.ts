/**
 * Up-front checks of what callers pass to connect, status and terminate: strict in what is sent,
 * with a "did you mean" when a mistake looks like a common one. Bad input is a TypeError that never
 * quotes a string value (it could be a secret).
 */
import type { ConnectRequest } from '../wire.js'
import { describe } from './options.js'

type Kind = 'string' | 'non-empty string' | 'boolean' | 'number' | 'object' | 'string map' | 'spawn' | 'mount'
interface Shape {
  [field: string]: Kind | Shape
}

const RESOURCE_LIMITS: Shape = {
  cpu_period: 'number',
  cpu_period_percent: 'number',
  cpu_time_limit: 'number',
  memory_limit_bytes: 'number',
  disk_limit_bytes: 'number',
}
const EXECUTABLE: Shape = { mount: 'mount', env: 'string map', resource_limits: RESOURCE_LIMITS }
const SPAWN: Shape = {
  tag: 'string',
  cluster: 'string',
  lifetime_limit_seconds: 'number',
  max_idle_seconds: 'number',
  executable: EXECUTABLE,
}
const REQUEST: Shape = { key: 'non-empty string', spawn: 'spawn', user: 'string', auth: 'object' }

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

// `maxIdleSeconds`, `max-idle-seconds` and `MAX_IDLE_SECONDS` all mean `max_idle_seconds`.
const fold = (name: string) => name.toLowerCase().replace(/[-_]/g, '')

function suggest(name: string, known: string[]): string | undefined {
  const folded = fold(name)
  return known.find((k) => fold(k) === folded) ?? known.find((k) => folded.startsWith(fold(k)) || fold(k).startsWith(folded))
}

function bad(path: string, expected: string, value: unknown): never {
  throw new TypeError(`connect(): ${path} must be ${expected}, got ${value === '' ? 'an empty string' : describe(value)}`)
}

function check(value: unknown, kind: Kind | Shape, path: string): void {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') bad(path, 'a string', value)
      return
    case 'non-empty string':
      if (typeof value !== 'string' || value === '') bad(path, 'a non-empty string', value)
      return
    case 'boolean':
      if (typeof value !== 'boolean') bad(path, 'a boolean', value)
      return
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) bad(path, 'a non-negative number', value)
      return
    case 'object':
      if (!isPlainObject(value)) bad(path, 'a plain object', value)
      return
    case 'mount':
      if (typeof value !== 'string' && typeof value !== 'boolean') bad(path, 'a string or a boolean', value)
      return
    case 'string map':
      if (!isPlainObject(value)) bad(path, 'an object of strings', value)
      for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') bad(`${path}.${k}`, 'a string', v)
      return
    case 'spawn':
      if (typeof value === 'boolean') return
      return check(value, SPAWN, path)
    default: {
      if (!isPlainObject(value)) bad(path, 'a plain object', value)
      const known = Object.keys(kind)
      for (const [field, fieldValue] of Object.entries(value)) {
        if (fieldValue === undefined) continue
        const fieldKind = kind[field]
        if (fieldKind === undefined) {
          const hint = suggest(field, known)
          throw new TypeError(
            `connect(): ${path}.${field} is not a connect option; ${hint ? `did you mean ${path}.${hint}?` : `known: ${known.join(', ')}`}`,
          )
        }
        check(fieldValue, fieldKind, `${path}.${field}`)
      }
    }
  }
}

/** Validates a ConnectRequest (undefined when there is none); targets map it to their own body. */
export function checkConnectRequest(request: unknown): ConnectRequest | undefined {
  if (request === undefined || request === null) return undefined
  if (typeof request === 'string') {
    throw new TypeError('connect() takes a ConnectRequest object, got a string: did you mean connect({ key })?')
  }
  if (!isPlainObject(request)) {
    throw new TypeError(`connect() takes a ConnectRequest object ({ key?, spawn?, user?, auth? }), got ${describe(request)}`)
  }
  check(request, REQUEST, 'request')
  return request as ConnectRequest
}

/** Validates a backend id argument. */
export function checkBackendId(operation: string, backendId: unknown): string {
  if (typeof backendId === 'string' && backendId !== '') return backendId
  const fromHandle = typeof backendId === 'object' && backendId !== null && typeof (backendId as { backend_id?: unknown }).backend_id === 'string'
  throw new TypeError(
    `${operation} takes a backend id string, got ${backendId === '' ? 'an empty string' : describe(backendId)}` +
      (fromHandle ? `: did you mean ${operation.replace('()', '')}(handle.backend_id)?` : ''),
  )
}

/** Validates a per-call signal (a wrong value would otherwise be silently ignored by fetch). */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (typeof signal !== 'object' || signal === null || typeof (signal as AbortSignal).addEventListener !== 'function' || typeof (signal as AbortSignal).aborted !== 'boolean') {
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`)
  }
  return signal as AbortSignal
}

/** The JSON text of a connect body; a TypeError when `auth` cannot be serialised (a cycle, a BigInt). */
export function connectBody(body: unknown): string {
  try {
    return JSON.stringify(body)
  } catch (error) {
    throw new TypeError('connect(): request.auth must be JSON-serialisable', { cause: error })
  }
}

/**
 * Refuses a token with whitespace or control characters (a trailing newline from an env file): it
 * cannot go in a header, and fetch would throw with the whole header value, token included, in its message.
 */
export function checkHeaderToken(token: string): void {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError('Jamsocket: token contains whitespace or characters that cannot go in an HTTP header (a trailing newline?)')
  }
}
