/** Shared fixtures of the client tests: a recording fetch, canned responses, a throwaway HTTP server. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FetchLike } from '../../src/abort.js'
import type { JamsocketError } from '../../src/errors.js'
import type { ConnectResponse } from '../../src/wire.js'

/** The error `promise` rejects with (it must reject). */
export const fail = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error as JamsocketError,
  )

export const TOKEN = 'sk_live_9f8e7d6c5b4a_SECRET'

export const CONNECT_RESPONSE: ConnectResponse = {
  backend_id: 'b1x2y3',
  spawned: true,
  status: 'scheduled',
  token: 'conn-tok-1',
  url: 'https://b1x2y3.p.jamsocket.net/conn-tok-1/',
  secret_token: 'backend-secret',
  status_url: 'https://api.jamsocket.com/v2/backend/b1x2y3/status',
  ready_url: '',
}

/** A JSON response, as the API sends it. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
}

export interface Recorded {
  url: string
  method: string
  headers: Record<string, string>
  body: string | undefined
  redirect: RequestInit['redirect']
  signal: AbortSignal | undefined
}

type Answer = Response | Error | ((request: Recorded) => Response | Promise<Response>)

/**
 * A fetch that records every call and answers from `answers` in order (the last one repeats).
 * An Error answer is thrown, as fetch does for a network failure.
 */
export function recordingFetch(...answers: Answer[]): FetchLike & { calls: Recorded[] } {
  const calls: Recorded[] = []
  const fetch = async (input: string | URL, init: RequestInit = {}) => {
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((value, name) => (headers[name] = value))
    const request: Recorded = {
      url: String(input),
      method: init.method ?? 'GET',
      headers,
      body: typeof init.body === 'string' ? init.body : undefined,
      redirect: init.redirect,
      signal: init.signal ?? undefined,
    }
    calls.push(request)
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)]
    if (answer instanceof Error) throw answer
    if (typeof answer === 'function') return answer(request)
    if (answer === undefined) throw new Error('no answer configured')
    return answer.clone()
  }
  return Object.assign(fetch, { calls })
}

/** A fetch that never answers until its signal aborts (then rejects with the signal's reason, as fetch does). */
export function hangingFetch(): FetchLike & { calls: number } {
  const fetch = Object.assign(
    (_input: string | URL, init: RequestInit = {}) => {
      fetch.calls++
      return new Promise<Response>((_resolve, reject) => {
        const signal = init.signal
        if (signal?.aborted) return reject(signal.reason)
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    },
    { calls: 0 },
  )
  return fetch
}

/** An error shaped like undici's network failure: `TypeError('fetch failed')` with a coded cause. */
export function networkFailure(code: string): TypeError {
  const cause = Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code })
  return new TypeError('fetch failed', { cause })
}

/** A node:http server on 127.0.0.1; `close()` also drops keep-alive connections. */
export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  url: string
  port: number
  server: Server
  close: () => Promise<void>
}> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A port on 127.0.0.1 where nothing listens (a server was bound there, then closed). */
export async function refusedPort(): Promise<number> {
  const s = await startServer(() => {})
  await s.close()
  return s.port
}
