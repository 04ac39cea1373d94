/**
 * Polls `check` every `pollMs` until it returns a truthy value (returned) or `timeoutMs` passes
 * (throws, with the last value): the tests' one way of waiting for a condition, never a fixed sleep.
 */
export async function eventually<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 10_000,
  pollMs = 10,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(value)})`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}
