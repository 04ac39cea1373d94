/**
 * The browser entries as shipped: each bundles for a browser with no Node built-ins and none of the
 * server-side layers, pulls in only its own peers, and the built /react and /socketio (ESM and CJS)
 * start with the 'use client' directive that Next.js's app router needs.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build as tsup, type Options } from 'tsup'
import { describe, expect, it } from 'vitest'
import configs from '../../tsup.config.js'
import { browserBundle } from '../helpers/browser-bundle.js'

describe('the browser entries', () => {
  it.each([
    ['browser/index.ts', [], ['react', 'socket.io-client']],
    ['react/index.ts', ['react'], ['socket.io-client']],
    ['socketio/index.ts', ['react', 'socket.io-client'], []],
  ] as const)('%s bundles for a browser with no node:*, no client/pool/dev layer, and only its peers', async (entry, peers, notPeers) => {
    const { inputs, code } = await browserBundle(entry, ['react', 'socket.io-client'])
    expect(inputs.filter((p) => p.startsWith('node:') || /src\/(client|pool|dev)\//.test(p))).toEqual([])
    expect(code).not.toMatch(/\bprocess\.|\bBuffer\b|require\(/)
    for (const peer of peers) expect(code).toContain(`from "${peer}"`)
    for (const peer of notPeers) expect(code).not.toContain(`"${peer}"`)
  })

  it('the built /react and /socketio begin with the use client directive, in ESM and CJS; /client does not', async () => {
    const list = (Array.isArray(configs) ? configs : [configs]) as Options[]
    const browser = list.filter((c) => typeof c.entry === 'object' && 'react' in (c.entry as object))
    expect(browser.map((c) => c.format)).toEqual([['esm'], ['cjs']])
    const outDir = await mkdtemp(join(tmpdir(), 'sb-build-'))
    try {
      for (const config of browser) await tsup({ ...config, outDir, dts: false, sourcemap: false, silent: true, config: false })
      // The directive prologue: 'use client' first, or right after CJS's own 'use strict'.
      const prologue = async (file: string) => /^(["']use strict["'];\s*)?["']use client["'];/.test(await readFile(join(outDir, file), 'utf8'))
      for (const file of ['react.js', 'react.cjs', 'socketio.js', 'socketio.cjs']) expect(await prologue(file), file).toBe(true)
      for (const file of ['client.js', 'client.cjs']) expect(await readFile(join(outDir, file), 'utf8')).not.toContain('use client')
    } finally {
      await rm(outDir, { recursive: true, force: true })
    }
  })
})
