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
  // The browser entries. ESM in one split build, so that /client, /react and /socketio share one
  // BackendHandle class; CJS unsplit, because tsup's CJS splitting puts helpers above the
  // 'use client' directive. esbuild keeps each entry's directive first in both (see
  // test/browser/package.test.ts). The peers stay imports.
  ...(['esm', 'cjs'] as const).map((format) => ({
    entry: { client: 'src/browser/index.ts', react: 'src/react/index.ts', socketio: 'src/socketio/index.ts' },
    format: [format],
    dts: true,
    platform: 'browser' as const,
    target: 'es2022',
    sourcemap: true,
    splitting: format === 'esm',
    external: ['react', 'socket.io-client'],
  })),
  {
    entry: { cli: 'src/dev/cli.ts' },
    format: ['esm'],
    target: 'node20',
    sourcemap: true,
  },
])
