/**
 * The quickstart (`npm run demo`), run as a user runs it: its backend, written with
 * session-backends/backend, greets the verified user over HTTP and WebSocket and saves its state on
 * the soft terminate, which then ends with exit_error false; a request without the secret_token is refused.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, test } from 'vitest'

const main = fileURLToPath(new URL('../../examples/quickstart/main.ts', import.meta.url))

test('the quickstart refuses a request without the secret_token, greets the verified user, saves its state on SIGTERM and ends with exit_error false', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', main], { timeout: 30_000 })
  expect(stdout).toMatch(/listening on 127\.0\.0\.1:\d+/)
  expect(stdout).toContain('GET /hello without the secret_token → 403')
  expect(stdout).toContain('GET /hello → "hello ada", auth={"role":"editor"}, requests=1')
  expect(stdout).toContain('GET /again?x=1 → "hello ada", auth={"role":"editor"}, requests=2')
  expect(stdout).toMatch(/WebSocket: echo to ada from \w+: hello over WebSocket/)
  expect(stdout).toContain('SIGTERM: saved 2 requests')
  expect(stdout).toContain('ended: reason=external, exit_error=false')
  expect(stdout).toContain('state saved on SIGTERM: {"requests":2}')
})
