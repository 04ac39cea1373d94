/**
 * The `session-backends dev` command as a user runs it: a real child process, plain output when not
 * on a TTY, backends reachable through the library, `--watch`, and a clean exit on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/index.js'
import { alive, eventually, fixture } from './helpers.js'

const cli = fileURLToPath(new URL('../../src/dev/cli.ts', import.meta.url))
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL')
})

function run(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, output: () => output, exit }
}

/** The complete `change in …` lines printed so far (a line still being written is left out). */
const changeLines = (text: string) => text.split('\n').slice(0, -1).filter((line) => line.startsWith('change in'))

describe('session-backends dev', () => {
  it('serves the API, prints prefixed plain output lines, and terminates every backend on SIGTERM', async () => {
    const { child, output, exit } = run(['dev', '--port', '0', '--proxy-port', '0', '--grace-seconds', '1', '--', process.execPath, fixture('listen')])
    const port = Number((await eventually(() => /API http:\/\/127\.0\.0\.1:(\d+)/.exec(output()), 'the banner'))[1])
    // The dashboard's URL is printed at start, and it is the page.
    await eventually(() => output().includes(`dashboard: http://127.0.0.1:${port}/`), 'the dashboard URL')
    expect((await fetch(`http://127.0.0.1:${port}/`)).headers.get('content-type')).toBe('text/html; charset=utf-8')
    const jamsocket = new Jamsocket({ dev: true, port })
    const handle = await jamsocket.connect({ key: 'cli' })
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    const env = (await (await fetch(`${handle.url}env`)).json()) as { pid: string }
    await eventually(() => output().includes(`[${handle.backend_id}] listening on`), 'the prefixed output line')
    expect(output()).toContain(`[${handle.backend_id}] status: ready`)
    expect(output()).not.toContain('\x1b[')
    // The banner says how to reach Plane's routes; a Plane backend's line names its image.
    expect(output()).toContain(`new Jamsocket({ plane: 'http://127.0.0.1:${port}', image: '<any name>' })`)
    const viaPlane = await new Jamsocket({ plane: `http://127.0.0.1:${port}`, image: 'ghcr.io/acme/editor:1.4' }).connect({ key: 'cli-plane' })
    await eventually(() => output().includes(`[${viaPlane.backend_id}] status: scheduled key=cli-plane image=ghcr.io/acme/editor:1.4`), 'the image in the output')
    handle.close()
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
    expect(output()).toContain(`[${handle.backend_id}] status: terminated (external)`)
    expect(alive(Number(env.pid))).toBe(false)
  })

  it('prints no dashboard URL when the API requires a token (a browser page cannot send it)', async () => {
    const { child, output, exit } = run(['dev', '-p', '0', '--proxy-port', '0', '--api-token', 'a-token-of-enough-length', '--', process.execPath, fixture('listen')])
    const port = Number((await eventually(() => /apiUrl: 'http:\/\/127\.0\.0\.1:(\d+)'/.exec(output()), 'the banner'))[1])
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(401)
    expect(output()).not.toContain('dashboard')
    child.kill('SIGINT')
    expect(await exit).toBe(0)
  })

  it('terminates the backends when a watched file changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-watch-'))
    try {
      const { child, output, exit } = run(['dev', '-p', '0', '--proxy-port', '0', '--watch', dir, '--', process.execPath, fixture('listen')])
      const port = Number((await eventually(() => /API http:\/\/127\.0\.0\.1:(\d+)/.exec(output()), 'the banner'))[1])
      const jamsocket = new Jamsocket({ dev: true, port })
      const handle = await jamsocket.connect({ key: 'watched' })
      await handle.waitUntilReady({ timeoutMs: 10_000 })
      const ended = new Promise((resolve) => handle.once('terminated', resolve))
      writeFileSync(join(dir, 'backend.mjs'), '// changed')
      expect(await ended).toMatchObject({ status: 'terminated', termination_reason: 'external' })
      // The message comes over the child's stdout, the status over the API: either may arrive first.
      await eventually(() => changeLines(output()).length > 0, 'the change message')
      handle.close()
      child.kill('SIGINT')
      expect(await exit).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('never watches the data directory: backends that write their data are not restarted, however --data-dir is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-watch-data-'))
    try {
      const { child, output, exit } = run(['dev', '-p', '0', '--proxy-port', '0', '--watch', dir, '--data-dir', join(dir, 'store'), '--', process.execPath, fixture('listen')])
      const port = Number((await eventually(() => /API http:\/\/127\.0\.0\.1:(\d+)/.exec(output()), 'the banner'))[1])
      const handle = await new Jamsocket({ dev: true, port }).connect({ key: 'writer', spawn: { executable: { mount: true } } })
      await handle.waitUntilReady({ timeoutMs: 10_000 })
      expect(await (await fetch(`${handle.url}write`)).text()).toBe('written')
      // A change outside the data directory does restart them; the message lists every change it saw.
      const ended = new Promise((resolve) => handle.once('terminated', resolve))
      writeFileSync(join(dir, 'backend.mjs'), '// changed')
      await ended
      // The message comes over the child's stdout, the status over the API: either may arrive first.
      const changes = await eventually(() => changeLines(output()).length > 0 && changeLines(output()), 'the change message')
      expect(changes).toHaveLength(1)
      expect(changes[0]).toContain('backend.mjs')
      expect(changes[0]).not.toContain('store')
      handle.close()
      child.kill('SIGINT')
      expect(await exit).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('terminates every backend and exits on SIGHUP (the terminal or SSH session closed)', async () => {
    const { child, output, exit } = run(['dev', '--port', '0', '--proxy-port', '0', '--grace-seconds', '1', '--', process.execPath, fixture('listen')])
    const port = Number((await eventually(() => /API http:\/\/127\.0\.0\.1:(\d+)/.exec(output()), 'the banner'))[1])
    const handle = await new Jamsocket({ dev: true, port }).connect({ key: 'hangup' })
    await handle.waitUntilReady({ timeoutMs: 10_000 })
    const env = (await (await fetch(`${handle.url}env`)).json()) as { pid: string }
    handle.close()
    child.kill('SIGHUP')
    expect(await exit).toBe(0)
    expect(output()).toContain(`[${handle.backend_id}] status: terminated (external)`)
    expect(alive(Number(env.pid))).toBe(false)
  })

  it('passes --env and --env-file variables to backends, and nothing else of its own environment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-envfile-'))
    try {
      const file = join(dir, '.env')
      writeFileSync(file, '# settings\nFROM_FILE=file value\nexport QUOTED="a b"\n')
      const { child, output, exit } = run(
        ['dev', '-p', '0', '--proxy-port', '0', '--env-file', file, '--env', 'GIVEN=1', '-e', 'FROM_SHELL', '--', process.execPath, fixture('listen')],
        { FROM_SHELL: 'shell value', SECRET_OF_SHELL: 'hidden' },
      )
      const port = Number((await eventually(() => /API http:\/\/127\.0\.0\.1:(\d+)/.exec(output()), 'the banner'))[1])
      const handle = await new Jamsocket({ dev: true, port }).connect({ key: 'env' })
      await handle.waitUntilReady({ timeoutMs: 10_000 })
      const env = (await (await fetch(`${handle.url}allenv`)).json()) as Record<string, string>
      expect(env).toMatchObject({ FROM_FILE: 'file value', QUOTED: 'a b', GIVEN: '1', FROM_SHELL: 'shell value', HOST: '127.0.0.1' })
      expect(env.SECRET_OF_SHELL).toBeUndefined()
      handle.close()
      child.kill('SIGINT')
      expect(await exit).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('on a non-loopback --host, prints the API token it requires, and the usage says what a backend gets', async () => {
    const { child, output, exit } = run(['dev', '-p', '0', '--proxy-port', '0', '--host', '0.0.0.0', '--', process.execPath, fixture('listen')])
    const token = (await eventually(() => /API token \(required, generated for this run\): (\S+)/.exec(output()), 'the token line'))[1]!
    const port = Number((await eventually(() => /API http:\/\/localhost:(\d+)/.exec(output()), 'the banner'))[1])
    expect((await fetch(`http://127.0.0.1:${port}/v2/account/-/backends`)).status).toBe(401)
    expect((await fetch(`http://127.0.0.1:${port}/v2/account/-/backends`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    child.kill('SIGTERM')
    expect(await exit).toBe(0)
    const help = run(['--help'])
    expect(await help.exit).toBe(0)
    expect(help.output()).toMatch(/listen on HOST:PORT/)
    expect(help.output()).toContain('x-verified-secret')
    expect(help.output()).toContain('--env-file')
  })

  it('exits 2 with the usage on bad arguments', async () => {
    for (const args of [['dev'], ['serve', '--', 'node'], ['dev', '--bogus', '--', 'node']]) {
      const { output, exit } = run(args)
      expect(await exit).toBe(2)
      expect(output()).toContain('Usage: session-backends dev')
    }
  })
})
