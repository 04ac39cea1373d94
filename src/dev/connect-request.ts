/**
 * Reads a connect request body strictly enough that a typo gets a 400 with a message saying what is
 * wrong, and leniently enough that fields this server does not use (cluster, …) are accepted.
 */
import type { ResourceLimits } from '../wire.js'
import { checkRequestEnv } from './env.js'
import { checkLimits } from './limits.js'
import { checkMount } from './mount.js'
import { ApiProblem } from './respond.js'

/** A validated connect request. */
export interface ConnectInput {
  key: string | undefined
  /** False: only return an existing backend. */
  spawn: boolean
  tag: string | undefined
  user: string | undefined
  /** `auth`, JSON-serialised (`{}` when none): the `x-verified-user-data` header. */
  userData: string
  env: Record<string, string>
  mount: string | true | undefined
  limits: ResourceLimits | undefined
  maxIdleSeconds: number | undefined
  lifetimeSeconds: number | undefined
}

/**
 * Longest key, in UTF-8 bytes. A key becomes `SESSION_BACKEND_KEY`, and the kernel refuses one
 * environment string over 128 KiB (E2BIG): an absurd key is refused here, not at spawn time.
 */
const MAX_KEY_BYTES = 4096

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function bad(message: string): never {
  throw new ApiProblem(400, 'InvalidRequest', message)
}

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function seconds(spawn: Record<string, unknown>, field: string): number | undefined {
  const value = spawn[field]
  if (value === undefined || value === null) return undefined
  // Fractions are accepted locally (the hosted API takes whole seconds) so that tests can be quick.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) bad(`spawn.${field} must be a number of seconds >= 0`)
  return value
}

/** Parses the request body text (empty = `{}`). Throws a 400 {@link ApiProblem}. */
export function parseConnectInput(text: string, options: { allowLoaderEnv: boolean } = { allowLoaderEnv: false }): ConnectInput {
  let body: unknown = {}
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text)
    } catch {
      bad('Failed to parse the request body as JSON')
    }
  }
  if (!isObject(body)) bad('the request body must be a JSON object')
  const { key, spawn, user, auth } = body
  if (key !== undefined && key !== null && (typeof key !== 'string' || key === '')) bad('key must be a non-empty string')
  if (typeof key === 'string' && Buffer.byteLength(key) > MAX_KEY_BYTES) bad(`key must be at most ${MAX_KEY_BYTES} bytes`)
  // A lone surrogate has no UTF-8 form: two such keys would share one name in the environment and on disk.
  if (typeof key === 'string' && LONE_SURROGATE.test(key)) bad('key must be well-formed Unicode (no lone surrogate)')
  if (user !== undefined && user !== null && typeof user !== 'string') bad('user must be a string')
  if (auth !== undefined && auth !== null && !isObject(auth)) bad('auth must be a JSON object')
  if (spawn !== undefined && spawn !== null && typeof spawn !== 'boolean' && !isObject(spawn)) bad('spawn must be a boolean or an object')
  const config = isObject(spawn) ? spawn : {}
  const tag = config.tag
  if (tag !== undefined && tag !== null && typeof tag !== 'string') bad('spawn.tag must be a string')
  const executable = config.executable ?? {}
  if (!isObject(executable)) bad('spawn.executable must be an object')
  const env = executable.env ?? {}
  if (!isObject(env) || !Object.values(env).every((v) => typeof v === 'string')) bad('spawn.executable.env must map names to strings')
  const envProblem = checkRequestEnv(env as Record<string, string>, options.allowLoaderEnv)
  if (envProblem !== undefined) bad(envProblem)
  let mount: string | true | undefined
  let limits: ResourceLimits | undefined
  try {
    mount = checkMount(executable.mount) as string | true | undefined
    limits = checkLimits(executable.resource_limits)
  } catch (error) {
    bad((error as Error).message)
  }
  return {
    key: (key as string | null | undefined) ?? undefined,
    spawn: spawn !== false,
    tag: (tag as string | null | undefined) ?? undefined,
    user: (user as string | null | undefined) ?? undefined,
    userData: JSON.stringify(auth ?? {}),
    env: env as Record<string, string>,
    mount,
    limits,
    maxIdleSeconds: seconds(config, 'max_idle_seconds'),
    lifetimeSeconds: seconds(config, 'lifetime_limit_seconds'),
  }
}
