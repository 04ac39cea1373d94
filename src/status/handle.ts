/**
 * STUB (to be replaced by the status issue): the public shape of BackendHandle, so that the client
 * and pool can be built against it.
 */
import type { FetchLike } from '../abort.js'
import type { BackendState, BackendStatus, ConnectResponse } from '../wire.js'

/** Options of a {@link BackendHandle}. */
export interface BackendHandleOptions {
  /** The fetch used for `status_url` and `ready_url`. @default globalThis.fetch */
  fetch?: FetchLike
}

/** A backend returned by connect: the ConnectResponse fields plus live status following. */
export class BackendHandle implements ConnectResponse {
  readonly backend_id: string
  readonly spawned: boolean
  readonly status: BackendStatus
  readonly token: string
  readonly url: string
  readonly secret_token?: string | null
  readonly status_url: string
  readonly ready_url: string
  #response: ConnectResponse
  #state: BackendState

  constructor(response: ConnectResponse, _options: BackendHandleOptions = {}) {
    this.#response = { ...response }
    this.backend_id = response.backend_id
    this.spawned = response.spawned
    this.status = response.status
    this.token = response.token
    this.url = response.url
    if (response.secret_token !== undefined) this.secret_token = response.secret_token
    this.status_url = response.status_url
    this.ready_url = response.ready_url
    this.#state = { status: 'scheduled', time: new Date().toISOString() }
  }

  /** The latest known state. */
  get state(): BackendState {
    return this.#state
  }

  /** The plain ConnectResponse, as received. */
  toJSON(): ConnectResponse {
    return { ...this.#response }
  }
}
