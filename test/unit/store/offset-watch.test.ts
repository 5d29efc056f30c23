import { describe, expect, it } from 'vitest';
import { OffsetWatch } from '../../../src/store/offset-watch.js';

describe('OffsetWatch', () => {
  it('wakes waiters when the applied offset reaches their target, and times out otherwise', async () => {
    const w = new OffsetWatch(() => new Map([[0, 1]]), 1000);
    const reached = w.waitFor(new Map([[0, 5]]), 60_000);
    const timedOut = w.waitFor(new Map([[0, 9]]), 50);
    w.notify(0, 5);
    expect(await reached).toBe(true);
    expect(await timedOut).toBe(false);
    w.close();
  });

  it('bounds the waiters: a read past the bound is refused (503, retryable); a write already in the log is not', async () => {
    const w = new OffsetWatch(() => new Map([[0, 0]]), 1000, 2);
    const a = w.waitFor(new Map([[0, 1]]), 60_000);
    const b = w.waitFor(new Map([[0, 1]]), 60_000);
    await expect(w.waitFor(new Map([[0, 1]]), 60_000)).rejects.toMatchObject({
      code: 'too_many_waiting',
      status: 503,
      retryable: true,
    });
    // A conditional write's verdict wait: answered as a timeout (pending), never as a refusal.
    expect(await w.waitFor(new Map([[0, 1]]), 60_000, true)).toBe(false);
    // Already reached: no wait, no bound.
    expect(await w.waitFor(new Map([[0, 0]]), 60_000)).toBe(true);
    w.notify(0, 1);
    expect(await Promise.all([a, b])).toEqual([true, true]);
    // Room again.
    const c = w.waitFor(new Map([[0, 2]]), 60_000);
    w.notify(0, 2);
    expect(await c).toBe(true);
    w.close();
  });
});
