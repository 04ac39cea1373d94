/**
 * `onTerminate()`'s exit codes and default time limit, in-process with fake timers: a signal is
 * emitted and `process.exit` stubbed. Each test loads a fresh copy of the module, because a shutdown,
 * once started, stays started.
 */
import { afterEach, beforeEach, expect, test, vi } from 'vitest'

const before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') }
let exit: ReturnType<typeof vi.fn>
let onTerminate: typeof import('../../src/backend/index.js').onTerminate

beforeEach(async () => {
  vi.useFakeTimers()
  vi.resetModules()
  exit = vi.fn()
  vi.spyOn(process, 'exit').mockImplementation(exit as never)
  vi.spyOn(console, 'error').mockImplementation(() => {})
  ;({ onTerminate } = await import('../../src/backend/index.js'))
})

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
  // A started shutdown keeps its handlers: take them off, so that this worker ends normally.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.off(signal, listener)
  }
})

test('every registered cleanup runs once; the process exits with 0 as soon as all have settled', async () => {
  const calls: string[] = []
  onTerminate((signal) => void calls.push(`a ${signal}`))
  onTerminate(async (signal) => {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    calls.push(`b ${signal}`)
  })
  process.emit('SIGINT', 'SIGINT')
  await vi.advanceTimersByTimeAsync(999)
  expect(exit).not.toHaveBeenCalled()
  await vi.advanceTimersByTimeAsync(1)
  expect(exit).toHaveBeenCalledExactlyOnceWith(0)
  expect(calls).toEqual(['a SIGINT', 'b SIGINT'])
})

test('by default a cleanup gets 8 seconds, then the process exits with code 1; a second signal changes nothing', async () => {
  const calls: string[] = []
  onTerminate(() => {})
  onTerminate((signal) => {
    calls.push(signal)
    return new Promise(() => {})
  })
  process.emit('SIGTERM', 'SIGTERM')
  process.emit('SIGTERM', 'SIGTERM')
  await vi.advanceTimersByTimeAsync(7999)
  expect(exit).not.toHaveBeenCalled()
  await vi.advanceTimersByTimeAsync(1)
  expect(exit).toHaveBeenCalledExactlyOnceWith(1)
  expect(calls).toEqual(['SIGTERM'])
})

test('a cleanup that throws synchronously counts as failed: exit code 1 once the others settle', async () => {
  onTerminate(() => {
    throw new Error('no disk')
  })
  onTerminate(() => {})
  process.emit('SIGTERM', 'SIGTERM')
  await vi.advanceTimersByTimeAsync(0)
  expect(exit).toHaveBeenCalledExactlyOnceWith(1)
})
