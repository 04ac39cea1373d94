import { describe, expect, it } from 'vitest'
import { browserBundle } from '../helpers/browser-bundle.js'

describe('the status module in a browser', () => {
  it('bundles for the browser with no Node built-ins', async () => {
    const { inputs, code } = await browserBundle('status/index.ts')
    // Nothing from node_modules: the status layer depends on no package in the browser.
    expect(inputs.filter((p) => p.includes('node_modules'))).toEqual([])
    expect(inputs.filter((p) => p.startsWith('node:') || p.includes('src/client'))).toEqual([])
    // The default transport is a plain fetch here: the node:http one is registered by the client only.
    expect(inputs.some((p) => p.endsWith('src/status/transport.ts'))).toBe(true)
    expect(code).not.toMatch(/\bfrom\s*["']node:|require\(\s*["']/)
    expect(code).not.toMatch(/\bprocess\.|\bBuffer\b/)
  })
})
