/** The `session-backends/backend` entry depends on Node alone: socket.io stays an optional peer. */
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const entry = fileURLToPath(new URL('../../src/backend/index.ts', import.meta.url))

test('the backend entry imports nothing but Node built-ins and the package’s own source (no socket.io, no dependency)', async () => {
  const result = await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent', packages: 'external' })
  const imports = Object.values(result.metafile.inputs).flatMap((input) => input.imports.filter((i) => i.external).map((i) => i.path))
  expect(imports.length).toBeGreaterThan(0)
  expect(imports.filter((path) => !path.startsWith('node:'))).toEqual([])
  expect(Object.keys(result.metafile.inputs).every((path) => path.startsWith('src/'))).toBe(true)
})
