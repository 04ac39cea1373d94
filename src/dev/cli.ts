#!/usr/bin/env node
/**
 * The `session-backends` command: `session-backends dev [options] -- <command> [args…]` runs the
 * local server with a terminal UI until SIGINT/SIGTERM/SIGHUP, then terminates every backend and exits.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs'
import { relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'
import { parseEnvArgs, parseEnvFile } from './env.js'
import { startDevServer } from './server.js'
import { SIGNALS } from './signals.js'
import { TerminalUi } from './ui.js'

const USAGE = `Usage: session-backends dev [options] -- <command> [args…]

Runs <command> as one local process per session backend, behind the Jamsocket v2 API
(new Jamsocket({ dev: true, port })) and a proxy for the backends' URLs.

Options:
  -p, --port <n>                   API port (default 8080; 0 = any free port)
      --proxy-port <n>             proxy port (default 9090; 0 = any free port)
      --host <address>             address to listen on (default 127.0.0.1)
      --allowed-host <name>        another Host name to accept (repeatable)
      --grace-seconds <s>          SIGTERM → SIGKILL grace period (default 10)
      --startup-timeout-seconds <s>  time to answer HEAD / before startuptimeout (default 300)
      --max-idle-seconds <s>       idle limit when a connect sets none (default 300; 0 = never)
      --data-dir <path>            where mount directories are created (default .dev-data)
  -w, --watch <path>               terminate the backends when files under <path> change (repeatable)
  -e, --env <NAME[=value]>         give backends this variable; a bare NAME passes this shell's value (repeatable)
      --env-file <path>            give backends the variables of this dotenv file (repeatable)
      --allow-loader-env           let connect requests set NODE_OPTIONS, LD_PRELOAD, PATH and the like
      --api-token <token>          require this token on the API (generated and printed when --host is
                                   not a loopback address)
  -h, --help                       show this help

Backends get PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TMPDIR, TMP, TEMP, TERM,
COLORTERM and NO_COLOR from this shell, what --env/--env-file give, the connect request's env, then
PORT, HOST and SESSION_BACKEND_*. Nothing else of this shell's environment (no tokens, no keys).
A backend should listen on HOST:PORT (loopback, so that only the proxy reaches it) and may check
the x-verified-secret header against the secret_token the page sends it.

Example:
  npx session-backends dev --port 8080 -- node backend.mjs`

function seconds(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new RangeError(`--${name} must be a number of seconds >= 0, got ${value}`)
  return n
}

function port(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new RangeError(`--${name} must be a port from 0 to 65535, got ${value}`)
  return n
}

/** Runs the CLI with `argv` (without node and the script). Resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string', short: 'p' },
        'proxy-port': { type: 'string' },
        host: { type: 'string' },
        'allowed-host': { type: 'string', multiple: true },
        'grace-seconds': { type: 'string' },
        'startup-timeout-seconds': { type: 'string' },
        'max-idle-seconds': { type: 'string' },
        'data-dir': { type: 'string' },
        watch: { type: 'string', short: 'w', multiple: true },
        env: { type: 'string', short: 'e', multiple: true },
        'env-file': { type: 'string', multiple: true },
        'allow-loader-env': { type: 'boolean' },
        'api-token': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const [subcommand, ...command] = positionals
  if (subcommand !== 'dev' || command.length === 0) {
    process.stderr.write(`${subcommand !== 'dev' ? `Unknown command: ${subcommand ?? '(none)'}` : 'Missing the backend command after --'}\n\n${USAGE}\n`)
    return 2
  }

  const ui = new TerminalUi()
  let server
  try {
    const grace = seconds('grace-seconds', values['grace-seconds'])
    const startup = seconds('startup-timeout-seconds', values['startup-timeout-seconds'])
    const env: Record<string, string> = {}
    for (const file of values['env-file'] ?? []) Object.assign(env, parseEnvFile(readFileSync(file, 'utf8'), file))
    Object.assign(env, parseEnvArgs(values.env ?? [], process.env))
    server = await startDevServer({
      command,
      port: port('port', values.port),
      proxyPort: port('proxy-port', values['proxy-port']),
      host: values.host,
      allowedHosts: values['allowed-host'],
      graceMs: grace === undefined ? undefined : grace * 1000,
      startupTimeoutMs: startup === undefined ? undefined : startup * 1000,
      defaultMaxIdleSeconds: seconds('max-idle-seconds', values['max-idle-seconds']),
      dataDir: values['data-dir'],
      env,
      allowLoaderEnv: values['allow-loader-env'],
      apiToken: values['api-token'],
      onEvent: (event) => ui.handle(event),
    })
  } catch (error) {
    ui.close()
    const code = (error as NodeJS.ErrnoException).code
    process.stderr.write(`session-backends dev: ${code === 'EADDRINUSE' ? `${(error as Error).message} (is another dev server running? try --port)` : (error as Error).message}\n`)
    return 1
  }
  const dev = server
  ui.info(`session-backends dev: API ${dev.apiUrl}  proxy ${dev.proxyUrl}  command: ${command.join(' ')}`)
  if (dev.apiToken === undefined) {
    ui.info(`  new Jamsocket({ dev: true, port: ${dev.port} })`)
    ui.info(`  new Jamsocket({ plane: '${dev.apiUrl}', image: '<any name>' })   (Plane's controller routes)`)
    ui.info(`  dashboard: ${dev.dashboardUrl}`)
  } else {
    // Printed once so that the developer can hand it to the client; the API refuses calls without it.
    if (values['api-token'] === undefined) ui.info(`  API token (required, generated for this run): ${dev.apiToken}`)
    ui.info(`  new Jamsocket({ account: '-', service: '-', token: <the API token>, apiUrl: '${dev.apiUrl}' })`)
    ui.info(`  new Jamsocket({ plane: '${dev.apiUrl}', image: '<any name>', token: <the API token> })   (Plane's controller routes)`)
  }

  const watchers: FSWatcher[] = []
  let debounce: NodeJS.Timeout | undefined
  // Backends write their data there: watching it would restart them whenever they save, in a loop.
  const dataRoot = resolve(values['data-dir'] ?? '.dev-data')
  const changed = new Set<string>()
  for (const path of values.watch ?? []) {
    try {
      const root = resolve(path)
      watchers.push(
        watch(root, { recursive: true }, (_event, file) => {
          const name = file ? String(file) : ''
          const full = resolve(root, name)
          if (full === dataRoot || full.startsWith(dataRoot + sep) || /(^|[\\/])(node_modules|\.git)([\\/]|$)/.test(name)) return
          changed.add(relative(process.cwd(), full) || root)
          clearTimeout(debounce)
          debounce = setTimeout(() => {
            const names = [...changed]
            changed.clear()
            const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ')
            ui.info(`change in ${shown}: terminating backends (clients reconnect to a fresh one)`)
            void dev.terminateAll()
          }, 100)
        }).on('error', (error) => ui.info(`--watch ${path}: ${error.message}`)),
      )
    } catch (error) {
      ui.info(`--watch ${path}: ${(error as Error).message}`)
    }
  }

  return new Promise<number>((done) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second Ctrl-C: do not wait out the grace period.
        ui.info(`${signal} again: killing every backend`)
        void dev.terminateAll({ hard: true })
        return
      }
      stopping = true
      ui.info(`${signal}: terminating every backend…`)
      clearTimeout(debounce)
      for (const w of watchers) w.close()
      void dev.close().then(() => {
        ui.info('all backends terminated; bye')
        ui.close()
        for (const signal of SIGNALS) process.off(signal, stop)
        done(0)
      })
    }
    // SIGHUP: the terminal or SSH session closed; the backends must not be left running.
    for (const signal of SIGNALS) process.on(signal, stop)
  })
}

// After SIGHUP the terminal is gone: a failed write must not end the process before its cleanup.
process.stdout.on('error', () => {})
process.stderr.on('error', () => {})

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`session-backends: ${(error as Error)?.stack ?? String(error)}\n`)
    process.exit(1)
  },
)
