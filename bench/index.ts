/**
 * `npm run bench`: runs every benchmark file in bench/ (except this one), one child process each so
 * that one benchmark's heap and sockets do not skew the next. Each prints its figures and the ratio
 * against a baseline measured in the same run. Pass names to run a subset: `npm run bench -- proxy`.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()

let failed = 0
for (const file of files) {
  console.log(`\n=== ${file}`)
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', `${dir}${file}`], { stdio: 'inherit' })
  if (run.status !== 0) failed++
}
if (failed > 0) {
  console.error(`\n${failed} benchmark(s) failed`)
  process.exit(1)
}
