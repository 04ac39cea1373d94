/**
 * The Jamsocket v2 API, as the hosted platform and the local server (`{ dev: true }`) answer it:
 * `POST /v2/service/{account}/{service}/connect`, `GET /v2/backend/{id}/status`,
 * `POST /v2/backend/{id}/terminate` with `{"hard": …}` → `{"status":"ok"}`.
 */
import { ProtocolError } from '../../errors.js'
import type { ConnectRequest, TerminateResponse } from '../../wire.js'
import { cacheBuster, type Call } from '../request.js'
import { connectBody } from '../validate.js'
import type { JamsocketSummary, Target } from './target.js'

/** Where a v2 target is and who the client is there. */
export interface V2Config {
  apiUrl: string
  account: string
  service: string
  token: string
  dev: boolean
}

const REDACTED = '[redacted]'
const STATUS_HEADERS: Readonly<Record<string, string>> = Object.freeze({ Accept: 'application/json' })

/** A v2 target (hosted or the local server). */
export function v2Target(config: V2Config): Target {
  const { apiUrl, account, service, token, dev } = config
  // Built once: the token and options never change (fetch does not mutate them).
  const authHeaders = Object.freeze({
    Authorization: `Bearer ${token}`,
    'Content-Type': 'application/json',
    Accept: 'application/json',
  }) as Record<string, string>
  const connectBase = `${apiUrl}/v2/service/${encodeURIComponent(account)}/${encodeURIComponent(service)}/connect?`
  return {
    kind: dev ? 'dev' : 'hosted',
    apiUrl,
    account,
    service,
    token,
    connect(request: ConnectRequest | undefined): Call {
      const body = request === undefined ? '{}' : connectBody(request)
      return {
        operation: 'connect()',
        method: 'POST',
        url: connectBase + cacheBuster(),
        headers: authHeaders,
        body,
        withToken: true,
        backendRoute: false,
      }
    },
    status(backendId: string): Call {
      return {
        operation: 'status()',
        method: 'GET',
        url: `${apiUrl}/v2/backend/${encodeURIComponent(backendId)}/status?${cacheBuster()}`,
        headers: STATUS_HEADERS as Record<string, string>,
        withToken: false,
        backendRoute: true,
      }
    },
    terminate(backendId: string, hard: boolean): Call {
      return {
        operation: 'terminate()',
        method: 'POST',
        url: `${apiUrl}/v2/backend/${encodeURIComponent(backendId)}/terminate`,
        headers: authHeaders,
        body: hard ? '{"hard":true}' : '{"hard":false}',
        withToken: true,
        backendRoute: true,
      }
    },
    terminated(body: unknown): TerminateResponse {
      if ((body as { status?: unknown } | null)?.status !== 'ok') {
        throw new ProtocolError('terminate response: status is not "ok"', 'status')
      }
      return { status: 'ok' }
    },
    summary(): JamsocketSummary {
      return { apiUrl, account, service, dev, token: REDACTED }
    },
  }
}
