#!/usr/bin/env node
/**
 * The `session-backends` command: `session-backends dev [options] -- <command> [args…]` runs the
 * local server with a terminal UI until SIGINT/SIGTERM, then terminates every backend and exits.
 */
import { watch, type FSWatcher } from 'node:fs'
import { relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startDevServer } from './server.js'
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
  -h, --help                       show this help

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
  ui.info(`  new Jamsocket({ dev: true, port: ${dev.port} })`)

  const watchers: FSWatcher[] = []
  let debounce: NodeJS.Timeout | undefined
  for (const path of values.watch ?? []) {
    try {
      const root = resolve(path)
      watchers.push(
        watch(root, { recursive: true }, (_event, file) => {
          const name = file ? String(file) : ''
          if (/(^|[\\/])(node_modules|\.git|\.dev-data)([\\/]|$)/.test(name)) return
          clearTimeout(debounce)
          debounce = setTimeout(() => {
            ui.info(`change in ${relative(process.cwd(), resolve(root, name)) || root}: terminating backends (clients reconnect to a fresh one)`)
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
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        done(0)
      })
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`session-backends: ${(error as Error)?.stack ?? String(error)}\n`)
    process.exit(1)
  },
)
