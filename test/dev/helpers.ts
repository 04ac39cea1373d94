/**
 * Helpers of the local-server tests: a server per test with short timings (cleaned up after each
 * test), waiting for conditions with a deadline (never fixed sleeps), raw API calls, SSE reading,
 * and the process-table check.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'
import { startDevServer, type DevEvent, type DevServer, type DevServerOptions } from '../../src/dev/index.js'
import { statusRank, type BackendState, type ConnectResponse } from '../../src/wire.js'
import { eventually } from '../helpers/eventually.js'

export type Fixture = 'listen' | 'crash' | 'never-listens' | 'ignore-sigterm' | 'escape' | 'burn' | 'report'

export function fixture(name: Fixture): string {
  return fileURLToPath(new URL(`./fixtures/${name}.mjs`, import.meta.url))
}

const servers: DevServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

/** A started server plus what it reported through `onEvent`. */
export interface TestServer extends DevServer {
  events: DevEvent[]
}

/** Starts a server running `name` on free ports with short timings; closed after the test. */
export async function startServer(name: Fixture, options: Partial<DevServerOptions> = {}): Promise<TestServer> {
  const events: DevEvent[] = []
  const server = await startDevServer({
    command: [process.execPath, fixture(name)],
    port: 0,
    proxyPort: 0,
    graceMs: 2000,
    startupTimeoutMs: 15_000,
    sweepIntervalMs: 20,
    readyWaitMs: 5000,
    holdMs: 10_000,
    onEvent: (event) => events.push(event),
    ...options,
  })
  servers.push(server)
  return Object.assign(server, { events })
}

export { eventually }

/** POSTs a connect with `body` (an object, or raw text). */
export async function connectRaw(server: DevServer, body: unknown = {}): Promise<ConnectResponse> {
  const response = await fetch(`${server.apiUrl}/v2/service/acct/svc/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer anything' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  if (response.status !== 200) throw new Error(`connect answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as ConnectResponse
}

export async function statusOf(server: DevServer, id: string): Promise<BackendState> {
  return (await (await fetch(`${server.apiUrl}/v2/backend/${id}/status`)).json()) as BackendState
}

/** Waits until the backend reaches `status` (or later) and returns its state. */
export function waitStatus(server: DevServer, id: string, status: BackendState['status']): Promise<BackendState> {
  return eventually(async () => {
    const state = await statusOf(server, id)
    return statusRank(state.status) >= statusRank(status) ? state : undefined
  }, `${id} to be ${status}`)
}

/** One server-sent event as received. */
export interface SseEvent {
  data?: string
  id?: string
  comment?: boolean
}

/**
 * Reads an SSE response until it ends or `stop(events)` says so; returns the events.
 * The body is read raw so that the exact framing (no space after the colon) can be asserted.
 */
export async function readSse(url: string, headers: Record<string, string> = {}, stop?: (events: SseEvent[]) => boolean): Promise<{ events: SseEvent[]; raw: string; status: number; headers: Headers }> {
  const controller = new AbortController()
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  const events: SseEvent[] = []
  let raw = ''
  if (!response.body) return { events, raw, status: response.status, headers: response.headers }
  const decoder = new TextDecoder()
  let pending = ''
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true })
      raw += text
      pending += text
      let end: number
      while ((end = pending.indexOf('\n\n')) !== -1) {
        const block = pending.slice(0, end)
        pending = pending.slice(end + 2)
        const event: SseEvent = {}
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) event.comment = true
          else if (line.startsWith('data:')) event.data = line.slice(5)
          else if (line.startsWith('id:')) event.id = line.slice(3)
        }
        events.push(event)
      }
      if (stop?.(events)) break
    }
  } finally {
    controller.abort()
  }
  return { events, raw, status: response.status, headers: response.headers }
}

/** The statuses of the data events. */
export function statuses(events: SseEvent[]): string[] {
  return events.filter((e) => e.data !== undefined).map((e) => (JSON.parse(e.data!) as BackendState).status)
}

/**
 * True while a process with this pid exists and has not exited: `kill(pid, 0)` does not throw ESRCH,
 * and it is not a zombie (killed, waiting only for its parent to reap it; it runs nothing).
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return !existsSync('/proc/self/stat') // no /proc (not Linux): kill(pid, 0) is all we can tell; else gone meanwhile
  }
}

/** A raw HTTP request (for headers fetch does not let us set, like Host). */
export function rawRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

/** The pids of the spare shells (`/bin/sh -s`, see src/dev/spare.ts) whose parent is `parent`. */
export function spareShells(parent: number): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1')
      // Fields after the command name: state ppid …; a zombie (Z) is not a live spare.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 2)
      if (Number(ppid) !== parent || state === 'Z') continue
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1') === '/bin/sh\0-s\0') pids.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}

/** The pid of the spare shell of `parent` when it has exactly one, else undefined (for {@link eventually}). */
export function oneSpareShell(parent: number): number | undefined {
  const pids = spareShells(parent)
  return pids.length === 1 ? pids[0] : undefined
}

/** Where cgroup v2 is mounted (its mount point and the root it shows), or undefined without it. */
function cgroupMount(): { point: string; root: string } | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ')
    if (fields[fields.indexOf('-') + 1] === 'cgroup2') return { point: fields[4]!.replace(/\\040/g, ' '), root: fields[3]! }
  }
  return undefined
}

/** The directory of a process's cgroup v2 in the mounted hierarchy, or undefined when it is gone (or there is none). */
export function cgroupDirOf(pid: number): string | undefined {
  const path = cgroupOf(pid)
  const mount = cgroupMount()
  if (path === undefined || mount === undefined) return undefined
  return mount.point + (mount.root === '/' ? path : path.slice(mount.root.length))
}

/** The cgroup v2 path of a process (as /proc/{pid}/cgroup says it), or undefined when it is gone. */
function cgroupOf(pid: number): string | undefined {
  try {
    return /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1]
  } catch {
    return undefined
  }
}

/** True when the server said it has no per-backend cgroups (cgroup v2 not writable here). */
export function noCgroups(server: TestServer): boolean {
  return server.events.some((e) => e.type === 'message' && e.text.includes('no per-backend cgroup'))
}

/** The pid the `escape` fixture's backend `backendId` printed: the child it moved out of its process group. */
export async function escapedPid(server: TestServer, backendId: string): Promise<number> {
  const line = await eventually(() => server.events.find((e) => e.type === 'log' && e.line.backendId === backendId && e.line.text.startsWith('escaped ')), 'the escaped pid')
  return Number((line as { line: { text: string } }).line.text.split(' ')[1])
}
