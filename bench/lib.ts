/** Helpers shared by the benchmarks (not a benchmark itself: bench/index.ts runs `*.bench.ts` only). */
import { createServer } from 'node:net'

/** The middle value (the upper one of the two middles for an even count). */
export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** A TCP port free on 127.0.0.1 just now (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Runs `a` and `b` once each, `a` first in even rounds and `b` first in odd ones, so that drift over
 * the run (JIT, GC, other load) hits both alike. Resolves with both results, `a`'s first.
 */
export async function alternate<A, B>(round: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (round % 2 === 0) {
    const first = await a()
    return [first, await b()]
  }
  const second = await b()
  return [await a(), second]
}
