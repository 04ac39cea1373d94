/**
 * Bundle size of the browser entries as shipped: the package is built with its own tsup config
 * (into a temporary folder), then each entry's whole export list (and, for reference, what a
 * typical page imports) is bundled for the browser with esbuild as an app would (minified, peers
 * `react` and `socket.io-client` external) and gzipped at level 9. Each figure is printed beside its
 * budget (the issue's: /client ≤ 8 KB, /react ≤ 9 KB, /socketio ≤ 10 KB, 1 KB = 1000 bytes) and as
 * a ratio to the status layer alone (src/status bundled the same way, the baseline, measured in the
 * same run). Deterministic: one round is enough. Exits 1 when an entry is over its budget.
 *
 * Run alone: npx tsx bench/bundle-size.bench.ts
 */
import { build } from 'esbuild'
import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build as tsup, type Options } from 'tsup'
import configs from '../tsup.config.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = await mkdtemp(join(tmpdir(), 'sb-size-'))
process.on('exit', () => rmSync(dist, { recursive: true, force: true }))
// The ESM build of every config (a browser bundler takes the `import` condition).
const esm = (configs as Options[]).filter((config) => [config.format].flat().includes('esm'))
for (const config of esm) await tsup({ ...config, format: 'esm', outDir: dist, dts: false, sourcemap: false, silent: true, config: false })

async function gzipSize(contents: string): Promise<number> {
  const result = await build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    nodePaths: [join(root, 'node_modules')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external: ['react', 'react-dom', 'socket.io-client'],
    logLevel: 'silent',
  })
  return gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(2)} KB`

const baseline = await gzipSize(`export * from './src/status/index.ts'`)

const built = (entry: string) => JSON.stringify(join(dist, `${entry}.js`))
const entries = [
  { name: 'session-backends/client', source: `export * from ${built('client')}`, budget: 8000 },
  { name: 'session-backends/react', source: `export * from ${built('react')}`, budget: 9000 },
  { name: 'session-backends/socketio', source: `export * from ${built('socketio')}`, budget: 10_000 },
]
const references = [
  {
    name: 'a page: SessionBackendProvider, SocketIOProvider, useReady, useSend, useEventListener',
    source: `export { SessionBackendProvider, SocketIOProvider, useReady, useSend, useEventListener } from ${built('socketio')}`,
  },
  { name: "import { BackendHandle } from 'session-backends' (the main entry)", source: `export { BackendHandle } from ${built('index')}` },
  { name: 'socket.io-client itself (the peer, not counted above)', source: `export { io } from 'socket.io-client'`, peer: true },
]

console.log(`baseline: the status layer alone (src/status) ${kb(baseline)} gzip\n`)
console.log('entry (all exports)'.padEnd(30), 'gzip'.padStart(9), 'budget'.padStart(10), ' of budget', ' vs baseline')
let over = 0
for (const entry of entries) {
  const size = await gzipSize(entry.source)
  const ok = size <= entry.budget
  if (!ok) over++
  console.log(
    entry.name.padEnd(30),
    kb(size).padStart(9),
    `≤ ${kb(entry.budget)}`.padStart(10),
    `${((size / entry.budget) * 100).toFixed(1)}%`.padStart(10),
    `${(size / baseline).toFixed(2)}×`.padStart(11),
    ok ? '' : '  OVER BUDGET',
  )
}
console.log('\nfor reference:')
for (const reference of references) {
  const size = reference.peer
    ? await build({ stdin: { contents: reference.source, resolveDir: root }, bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, logLevel: 'silent' }).then(
        (r) => gzipSync(r.outputFiles[0]!.contents, { level: 9 }).length,
      )
    : await gzipSize(reference.source)
  console.log(`  ${reference.name}: ${kb(size)} (${(size / baseline).toFixed(2)}× baseline)`)
}
if (over > 0) {
  console.error(`\n${over} entr${over === 1 ? 'y is' : 'ies are'} over budget`)
  process.exit(1)
}
