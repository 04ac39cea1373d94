/**
 * What a backend's environment is made of: a small base taken from the server's environment (so
 * that programs find their tools, home and locale), what the developer passes explicitly, and the
 * connect request's `env`, checked so that a request cannot smuggle in code (loader variables) or
 * forge a variable (a name that is not a name). Never the server's whole environment: its secrets
 * (cloud keys, API tokens) would reach code that anyone who can call the API may start.
 */
import { parseEnv } from 'node:util'

/** Variables copied from the server's environment into every backend's, when set. */
const BASE_NAMES = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TMP', 'TEMP', 'TERM', 'COLORTERM', 'NO_COLOR'])

/** True for the variables of the base environment (the names above and every `LC_*`). */
export function isBaseName(name: string): boolean {
  return BASE_NAMES.has(name) || name.startsWith('LC_')
}

/**
 * Variables that make a program load or run other code than it was asked to (dynamic loaders,
 * language runtimes, shells), or pick another program (PATH). A connect request may not set them:
 * one unauthenticated POST would otherwise run anything as the developer.
 */
const LOADER_NAMES = new Set([
  'PATH',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'GLIBC_TUNABLES',
  'GCONV_PATH',
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'IFS',
  'PYTHONPATH',
  'PYTHONHOME',
  'PYTHONSTARTUP',
  'PYTHONINSPECT',
  'PERL5LIB',
  'PERL5OPT',
  'PERLLIB',
  'RUBYLIB',
  'RUBYOPT',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'CLASSPATH',
  'DENO_DIR',
  'BUN_OPTIONS',
])

/** True for a variable a connect request may not set unless the server allows loader variables. */
function isLoaderName(name: string): boolean {
  return LOADER_NAMES.has(name) || name.startsWith('LD_') || name.startsWith('DYLD_')
}

/** A portable environment variable name (POSIX: letters, digits, `_`, not starting with a digit). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Longest value of one variable from a connect request, in UTF-16 code units (the kernel's cap is 128 KiB). */
const MAX_ENV_VALUE_CHARS = 32 * 1024

/**
 * Checks a connect request's `env`: returns a message naming the first bad variable, or undefined.
 */
export function checkRequestEnv(env: Record<string, string>, allowLoaderEnv: boolean): string | undefined {
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) return `spawn.executable.env: ${JSON.stringify(name.slice(0, 64))} is not a valid variable name (letters, digits and _)`
    if (!allowLoaderEnv && isLoaderName(name)) {
      return `spawn.executable.env: ${name} is refused (it changes what code runs; start the server with allowLoaderEnv / --allow-loader-env to permit it)`
    }
    if (value.includes('\0')) return `spawn.executable.env: ${name} contains a NUL character`
    if (value.length > MAX_ENV_VALUE_CHARS) return `spawn.executable.env: ${name} is longer than ${MAX_ENV_VALUE_CHARS} characters`
  }
  return undefined
}

/** The base environment: the {@link isBaseName} variables of `from` that are set. */
export function baseEnv(from: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(from)) if (value !== undefined && isBaseName(name)) env[name] = value
  return env
}

/**
 * Parses the CLI's `--env NAME[=value]` arguments: `NAME=value` sets it, a bare `NAME` passes the
 * server's own value on (skipped when unset). Throws RangeError on a bad name.
 */
export function parseEnvArgs(args: readonly string[], from: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const arg of args) {
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    if (!ENV_NAME.test(name)) throw new RangeError(`--env ${arg}: not a valid variable name`)
    if (eq !== -1) env[name] = arg.slice(eq + 1)
    else if (from[name] !== undefined) env[name] = from[name]
  }
  return env
}

/**
 * Parses a dotenv file with Node's own parser (`util.parseEnv`, Node 20.12+). Throws RangeError on
 * a name that is not a valid variable name.
 */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (!ENV_NAME.test(name)) throw new RangeError(`${file}: ${JSON.stringify(name)} is not a valid variable name`)
    if (value !== undefined) env[name] = value
  }
  return env
}
