/** One esbuild browser bundle of a source entry, as the bundle tests of the status layer and the browser entries make it. */
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

/** Bundles `src/{entry}` for a browser (ESM, es2022, peers in `external` left out): its inputs and its code. */
export async function browserBundle(entry: string, external: readonly string[] = []): Promise<{ inputs: string[]; code: string }> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`../../src/${entry}`, import.meta.url))],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    external: [...external],
  })
  return { inputs: Object.keys(result.metafile.inputs), code: result.outputFiles[0]!.text }
}
