import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const entry = fileURLToPath(new URL('../../src/status/index.ts', import.meta.url))

describe('the status module in a browser', () => {
  it('bundles for the browser with no Node built-ins', async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
    })
    expect(result.errors).toEqual([])
    const inputs = Object.keys(result.metafile.inputs)
    // Nothing from node_modules: the status layer depends on no package in the browser.
    expect(inputs.filter((p) => p.includes('node_modules'))).toEqual([])
    expect(inputs.filter((p) => p.startsWith('node:') || p.includes('src/client'))).toEqual([])
    // The default transport is a plain fetch here: the node:http one is registered by the client only.
    expect(inputs.some((p) => p.endsWith('src/status/transport.ts'))).toBe(true)
    const code = result.outputFiles[0]!.text
    expect(code).not.toMatch(/\bfrom\s*["']node:|require\(\s*["']/)
    expect(code).not.toMatch(/\bprocess\.|\bBuffer\b/)
  })
})
