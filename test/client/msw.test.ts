/** Through msw and the default global fetch (no fetch injected): the hosted API as users hit it. */
import { http, HttpResponse } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Jamsocket } from '../../src/client/index.js'
import { AuthenticationError, BackendNotFoundError } from '../../src/errors.js'
import { CONNECT_RESPONSE, TOKEN } from './helpers.js'

const API = 'https://api.jamsocket.com'
const seen: Request[] = []
const server = setupServer(
  http.post(`${API}/v2/service/:account/:service/connect`, async ({ request, params }) => {
    seen.push(request.clone())
    if (request.headers.get('authorization') !== `Bearer ${TOKEN}`) {
      return HttpResponse.json({ error: { status: 401, code: 'InvalidToken', message: 'token not recognised', id: 'req_9' } }, { status: 401 })
    }
    return HttpResponse.json({ ...CONNECT_RESPONSE, backend_id: `${String(params.account)}-${String(params.service)}` })
  }),
  http.get(`${API}/v2/backend/:id/status`, ({ params }) =>
    params.id === 'gone'
      ? HttpResponse.json({ id: 'e1', kind: 'NotFound', message: 'Backend does not exist' }, { status: 404 })
      : HttpResponse.json({ status: 'ready', time: '2024-08-15T14:11:57.010Z' }),
  ),
  http.post(`${API}/v2/backend/:id/terminate`, async ({ request }) => {
    seen.push(request.clone())
    return HttpResponse.json({ status: 'ok' })
  }),
)

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  server.resetHandlers()
  seen.length = 0
})
afterAll(() => server.close())

describe('with the global fetch (msw)', () => {
  const jamsocket = new Jamsocket({ account: 'acme', token: TOKEN, service: 'editor' })

  it('connect → status → terminate round trip on the hosted routes', async () => {
    const handle = await jamsocket.connect({ key: 'doc-42' })
    expect(handle.backend_id).toBe('acme-editor')
    expect(await seen[0]!.json()).toEqual({ key: 'doc-42' })
    await expect(jamsocket.status(handle.backend_id)).resolves.toEqual({ status: 'ready', time: '2024-08-15T14:11:57.010Z' })
    await expect(jamsocket.terminate(handle.backend_id, { hard: true })).resolves.toEqual({ status: 'ok' })
    expect(await seen[1]!.json()).toEqual({ hard: true })
    expect(seen[1]!.headers.get('authorization')).toBe(`Bearer ${TOKEN}`)
  })

  it('a wrong token → AuthenticationError with the hosted code and request id', async () => {
    const wrong = new Jamsocket({ account: 'acme', token: 'not-the-token', service: 'editor' })
    const error = await wrong.connect({ key: 'k' }).catch((e: unknown) => e)
    expect(AuthenticationError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ code: 401, errorCode: 'InvalidToken', requestId: 'req_9' })
  })

  it('an unknown backend → BackendNotFoundError (Plane body)', async () => {
    const error = await jamsocket.status('gone').catch((e: unknown) => e)
    expect(BackendNotFoundError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ errorCode: 'NotFound', message: 'status() failed with 404 NotFound: Backend does not exist' })
  })
})
