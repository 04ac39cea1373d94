import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: { index: 'src/index.ts', dev: 'src/dev/index.ts', backend: 'src/backend/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    target: 'node20',
    sourcemap: true,
    // p-retry (and its is-network-error) is ESM-only: a CJS `require` of it gets the namespace,
    // not the function, so it is inlined into the CJS build (deps-on-node20.md G5).
    noExternal: ['p-retry', 'is-network-error'],
  },
  {
    entry: { cli: 'src/dev/cli.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
  },
])
