/**
 * SessionBackend: the `@jamsocket/client` surface over a {@link BackendHandle}, so that code written
 * for the official browser client runs with only its import changed. Status is followed by the
 * status layer (reconnects with backoff, replay de-dup, no console output), not upstream's loop.
 */
import { HTTPError, NetworkError, ProtocolError } from '../errors.js'
import { BackendHandle, type BackendHandleOptions } from '../status/handle.js'
import { parseBackendState, type BackendState, type ConnectResponse } from '../wire.js'

/**
 * A backend followed from the browser, compatible with `@jamsocket/client`'s `SessionBackend`.
 * Following starts in the constructor (as upstream) and stops at `terminated` or {@link destroy}.
 */
export class SessionBackend {
  /** The backend's URL through the proxy (`connectResponse.url`). */
  declare readonly url: string
  /** `connectResponse.status_url`. */
  declare readonly statusUrl: string
  /** The handle underneath: typed events, `state`, `waitUntilReady()`. */
  declare readonly handle: BackendHandle
  /** Resolves once the backend is ready; never rejects (stays pending if it ends first). */
  declare readonly onReadyPromise: Promise<void>
  /** Resolves once the backend is terminated; never rejects. */
  declare readonly onTerminatedPromise: Promise<void>
  readonly #fetch: NonNullable<BackendHandleOptions['fetch']>

  constructor(connectResponse: ConnectResponse, options: BackendHandleOptions = {}) {
    this.handle = new BackendHandle(connectResponse, options)
    this.url = connectResponse.url
    this.statusUrl = connectResponse.status_url
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.onReadyPromise = new Promise((resolve) => this.onReady(resolve))
    this.onTerminatedPromise = new Promise((resolve) => this.onTerminated(resolve))
    // Upstream follows from construction on, whether or not anyone listens yet.
    this.handle.on('status', () => {})
  }

  /** True while the backend is ready (false before, and again from `terminating` on). */
  isReady(): boolean {
    return this.handle.state.status === 'ready'
  }

  /** True once the backend is terminated. */
  isTerminated(): boolean {
    return this.handle.state.status === 'terminated'
  }

  /**
   * Calls `callback` once the backend is ready: at once (synchronously) if it already is. Returns a
   * function that cancels it.
   */
  onReady(callback: () => void): () => void {
    if (this.isReady()) {
      callback()
      return () => {}
    }
    return this.handle.once('ready', () => callback())
  }

  /**
   * Calls `callback` once the backend is terminated: at once (synchronously) if it already is.
   * Upstream documents this method but never shipped it. Returns a function that cancels it.
   */
  onTerminated(callback: () => void): () => void {
    if (this.isTerminated()) {
      callback()
      return () => {}
    }
    return this.handle.once('terminated', () => callback())
  }

  /** Calls `callback` with every new status, in order, each at most once. Returns a function that removes it. */
  onStatus(callback: (state: BackendState) => void): () => void {
    return this.handle.on('status', callback)
  }

  /**
   * Fetches the current status once (`GET status_url`). Rejects with HTTPError (non-2xx),
   * NetworkError (no answer) or ProtocolError (not a backend state).
   */
  async status(): Promise<BackendState> {
    let response: Response
    try {
      response = await this.#fetch(this.statusUrl, { headers: { accept: 'application/json' }, cache: 'no-store' } as RequestInit)
    } catch (error) {
      throw new NetworkError('status(): the request failed', { cause: error })
    }
    const text = await response.text().catch(() => '')
    if (!response.ok) throw new HTTPError({ status: response.status, operation: 'status()', body: text.slice(0, 200) })
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (error) {
      throw new ProtocolError('status(): the answer is not JSON', 'body', { cause: error })
    }
    return parseBackendState(body, 'status() answer')
  }

  /**
   * Stops following (closes the status stream). The backend keeps running, as upstream's `destroy()`.
   * Pending `onReady`/`onTerminated` callbacks are dropped. Idempotent.
   */
  destroy(): void {
    this.handle.close()
  }
}
