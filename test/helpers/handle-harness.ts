/**
 * The harness of the BackendHandle tests: SSE servers and handles opened by a test are closed
 * after it, and handles reconnect fast.
 */
import { afterEach } from 'vitest'
import { BackendHandle, type BackendHandleOptions } from '../../src/status/index.js'
import type { BackendState, ConnectResponse } from '../../src/wire.js'
import { frame, startSseServer, type Script, type SseServer } from './sse-server.js'

/** Reconnects within milliseconds; a stall only after 5 s. */
export const FAST: BackendHandleOptions = { reconnect: { minDelayMs: 1, maxDelayMs: 5 }, stallTimeoutMs: 5_000 }

/** Registers the cleanup in the calling test file; returns how to open servers and handles. */
export function handleHarness(): {
  serve(script: Script): Promise<SseServer>
  follow(response: ConnectResponse, options?: BackendHandleOptions): BackendHandle
  /** Closes a handle made elsewhere (e.g. by `connect()`) after the test too. */
  track(handle: BackendHandle): BackendHandle
} {
  let servers: SseServer[] = []
  let handles: BackendHandle[] = []
  const track = (handle: BackendHandle) => {
    handles.push(handle)
    return handle
  }
  afterEach(async () => {
    for (const handle of handles) handle.close()
    await Promise.all(servers.map((s) => s.close()))
    servers = []
    handles = []
  })
  return {
    async serve(script) {
      const server = await startSseServer(script)
      servers.push(server)
      return server
    },
    follow: (response, options = FAST) => track(new BackendHandle(response, options)),
    track,
  }
}

/** A status stream that writes `states` (a full replay on every request) and then stays open, as Plane's does, or ends. */
export const streamOf =
  (states: BackendState[], end = false): Script =>
  async (c) => {
    if (!c.path.endsWith('/stream')) return c.status(404)
    await c.write(states.map((s) => frame(s)).join(''))
    if (end) c.end()
  }
