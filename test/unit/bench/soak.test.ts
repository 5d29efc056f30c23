import { describe, expect, it } from 'vitest';
import { type SoakWindow, slope, soakTrend } from '../../../src/bench/soak.js';

const w = (atS: number, rss: number, p99: number): SoakWindow => ({
  atS,
  writes: { ok: 100, failed: 0, p50Ms: 1, p99Ms: p99 },
  reads: { ok: 100, failed: 0, p50Ms: 1, p99Ms: p99 / 2 },
  rssMiB: { a: rss, b: 100 },
  heapMiB: { a: 20, b: 20 + atS / 60 },
});

describe('soak trend', () => {
  it('fits a least-squares slope', () => {
    expect(slope([])).toBe(0);
    expect(slope([[0, 5]])).toBe(0);
    expect(
      slope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBe(2);
    expect(
      slope([
        [0, 1],
        [1, 1],
        [2, 1],
      ]),
    ).toBe(0);
  });

  it('reports RSS growth per minute after the first third, and the p99 drift', () => {
    // Node a: warm-up growth in the first third, then +2 MiB per minute; node b flat.
    const windows = [
      w(60, 50, 10),
      w(120, 90, 10),
      w(180, 100, 10),
      w(240, 102, 20),
      w(300, 104, 20),
      w(360, 106, 20),
    ];
    const t = soakTrend(windows);
    expect(t.rssSlopeMiBPerMin).toEqual({ a: 2, b: 0 });
    expect(t.heapSlopeMiBPerMin).toEqual({ a: 0, b: 1 });
    expect(t.rssFirstMiB).toEqual({ a: 50, b: 100 });
    expect(t.rssLastMiB).toEqual({ a: 106, b: 100 });
    expect(t.writeP99Drift).toBe(2);
    expect(t.readP99Drift).toBe(2);
  });
});
