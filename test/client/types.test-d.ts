import { describe, expectTypeOf, it } from 'vitest'
import {
  type BackendHandle,
  type BackendState,
  type ConnectRequest,
  Jamsocket,
  type JamsocketInitOptions,
  type JamsocketOptions,
  type RequestOptions,
  type TerminateResponse,
} from '../../src/index.js'

describe('public types of the client', () => {
  it('constructor: prod credentials or dev mode, options inline or second', () => {
    expectTypeOf(Jamsocket).constructorParameters.toEqualTypeOf<[JamsocketInitOptions, (JamsocketOptions | undefined)?]>()
    new Jamsocket({ account: 'a', token: 't', service: 's' })
    new Jamsocket({ account: 'a', token: 't', service: 's', apiUrl: 'https://x', retry: 3, timeoutMs: 5 })
    new Jamsocket({ dev: true })
    new Jamsocket({ dev: true, port: 9000 }, { retry: false, fetch: globalThis.fetch })
    new Jamsocket({ dev: true }, { retry: { retries: 1, minTimeoutMs: 0, maxTimeoutMs: 10, maxRetryAfterMs: 100 } })
    // @ts-expect-error credentials are required outside dev mode
    new Jamsocket({ account: 'a', service: 's' })
    // @ts-expect-error dev must be literally true
    new Jamsocket({ dev: 'yes' })
    // @ts-expect-error retry takes false, a number or an object
    new Jamsocket({ dev: true }, { retry: true })
  })

  it('constructor: a Plane controller with an image, cluster, pool and token optional', () => {
    new Jamsocket({ plane: 'http://controller:8080', image: 'ghcr.io/acme/editor:1.4' })
    new Jamsocket({ plane: 'http://controller:8080', image: 'editor', cluster: 'c', pool: '', token: undefined, retry: false })
    // @ts-expect-error Plane runs an image: it is required
    new Jamsocket({ plane: 'http://controller:8080' })
    expectTypeOf<Jamsocket['target']>().toEqualTypeOf<'dev' | 'hosted' | 'plane'>()
  })

  it('calls and their results', () => {
    const jamsocket = Jamsocket.fromEnv()
    expectTypeOf(jamsocket.connect).parameters.toEqualTypeOf<[(ConnectRequest | undefined)?, (RequestOptions | undefined)?]>()
    expectTypeOf(jamsocket.connect()).toEqualTypeOf<Promise<BackendHandle>>()
    expectTypeOf(jamsocket.status('b1')).toEqualTypeOf<Promise<BackendState>>()
    expectTypeOf(jamsocket.terminate('b1', { hard: true })).toEqualTypeOf<Promise<TerminateResponse>>()
    expectTypeOf(jamsocket.handle).returns.toEqualTypeOf<BackendHandle>()
    expectTypeOf(Jamsocket.fromEnv).parameters.toEqualTypeOf<[(Record<string, string | undefined> | undefined)?, (JamsocketOptions | undefined)?]>()
    // @ts-expect-error a key is passed inside a request object
    void jamsocket.connect('doc-42')
    // @ts-expect-error connect takes no unknown fields
    void jamsocket.connect({ keys: 'doc-42' })
    // @ts-expect-error status takes an id
    void jamsocket.status()
  })

  it('the token is not readable from the client', () => {
    // @ts-expect-error no public token
    void Jamsocket.fromEnv().token
    expectTypeOf<Jamsocket['apiUrl']>().toEqualTypeOf<string>()
    expectTypeOf<Jamsocket['dev']>().toEqualTypeOf<boolean>()
  })
})
