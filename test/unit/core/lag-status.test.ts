import { describe, expect, it } from 'vitest';
import {
  evaluateLag,
  gapOf,
  LAG_STATUS_ORDER,
  type LagSample,
  LagWindow,
  LagWindows,
  lagKey,
  sampleLag,
  statusRank,
  worstStatus,
} from '../../../src/core/lag-status.js';

/** Samples every `step` ms from `start`, one per [applied, end] pair; `extra` adds fields per index. */
function series(
  pairs: Array<[number, number]>,
  opts: { start?: number; step?: number; extra?: (i: number, at: number) => Partial<LagSample> } = {},
): LagSample[] {
  const start = opts.start ?? 0;
  const step = opts.step ?? 1_000;
  return pairs.map(([appliedOffset, endOffset], i) => {
    const at = start + i * step;
    return { at, appliedOffset, endOffset, ...(opts.extra?.(i, at) ?? {}) };
  });
}

const last = (s: LagSample[]): number => s[s.length - 1]!.at;

describe('worstStatus / order', () => {
  it('orders OK < WARN < STALL < STOP < REWIND < GAP', () => {
    expect(LAG_STATUS_ORDER).toEqual(['OK', 'WARN', 'STALL', 'STOP', 'REWIND', 'GAP']);
    expect(statusRank('OK')).toBeLessThan(statusRank('WARN'));
    expect(statusRank('STOP')).toBeLessThan(statusRank('REWIND'));
    expect(statusRank('REWIND')).toBeLessThan(statusRank('GAP'));
  });

  it('GAP is the worst of all', () => {
    expect(worstStatus(['OK', 'GAP', 'REWIND', 'STOP'])).toBe('GAP');
    expect(worstStatus(['GAP', 'STALL', 'WARN'])).toBe('GAP');
  });

  it('picks the worst, OK for an empty list', () => {
    expect(worstStatus([])).toBe('OK');
    expect(worstStatus(['OK', 'WARN', 'OK'])).toBe('WARN');
    expect(worstStatus(['STOP', 'STALL', 'WARN'])).toBe('STOP');
    expect(worstStatus(new Set(['STALL', 'REWIND', 'OK'] as const))).toBe('REWIND');
  });

  it('sampleLag is never negative', () => {
    expect(sampleLag({ at: 0, appliedOffset: 12, endOffset: 10 })).toBe(0);
    expect(sampleLag({ at: 0, appliedOffset: 2, endOffset: 10 })).toBe(8);
  });
});

describe('evaluateLag — few samples', () => {
  it('no samples → WARN', () => {
    expect(evaluateLag([], 0)).toEqual({ status: 'WARN', reason: 'no samples' });
  });

  it('first sample with lag 0 → OK', () => {
    const r = evaluateLag([{ at: 1_000, appliedOffset: 7, endOffset: 7 }], 1_500);
    expect(r.status).toBe('OK');
    expect(r.reason).toContain('7');
  });

  it('first sample with lag > 0 → WARN "not enough samples"', () => {
    const r = evaluateLag([{ at: 1_000, appliedOffset: 3, endOffset: 10 }], 1_500);
    expect(r).toEqual({ status: 'WARN', reason: 'not enough samples (lag 7 records)' });
  });

  it('samples outside the window do not count', () => {
    const s = [{ at: 0, appliedOffset: 50, endOffset: 60 }, ...series([[1, 10]], { start: 20_000 })];
    expect(evaluateLag(s, 20_500).reason).toContain('not enough samples');
  });
});

describe('evaluateLag — OK', () => {
  it('lag 0 with no movement at all', () => {
    const s = series(Array.from({ length: 10 }, () => [42, 42] as [number, number]));
    expect(evaluateLag(s, last(s) + 100)).toEqual({ status: 'OK', reason: 'caught up at offset 42' });
  });

  it('lag 0 at the newest sample after a backlog', () => {
    const s = series([
      [0, 500],
      [200, 600],
      [600, 600],
    ]);
    expect(evaluateLag(s, last(s)).status).toBe('OK');
  });

  it('lag shrinking while offsets advance', () => {
    const s = series([
      [0, 340],
      [100, 400],
      [250, 420],
      [400, 430],
      [425, 437],
    ]);
    const r = evaluateLag(s, last(s) + 200);
    expect(r.status).toBe('OK');
    expect(r.reason).toBe('applying: lag shrank 340 → 12 records over 4.0 s');
  });

  it('steady lag while offsets advance', () => {
    const s = series(Array.from({ length: 8 }, (_, i) => [i * 100, i * 100 + 30] as [number, number]));
    const r = evaluateLag(s, last(s));
    expect(r.status).toBe('OK');
    expect(r.reason).toBe('applying: lag steady at 30 records over 7.0 s');
  });

  it('noisy, slightly growing lag is not a warning', () => {
    const lags = [50, 55, 48, 60, 52, 58, 61, 57, 63];
    const s = series(lags.map((l, i) => [i * 1_000, i * 1_000 + l] as [number, number]));
    expect(evaluateLag(s, last(s)).status).toBe('OK');
  });

  it('small growth over too few samples is not a trend', () => {
    const s = series([
      [0, 5],
      [10, 18],
      [20, 30],
    ]);
    expect(evaluateLag(s, last(s)).status).toBe('OK');
  });

  it('a short pause inside a progressing window is judged by the trend', () => {
    const s = series(
      [
        [0, 40],
        [100, 130],
        [200, 220],
        [200, 225],
        [200, 230],
      ],
      { step: 400 },
    ); // stuck for 0.9 s: shorter than stuckWarnMs (1 s)
    expect(evaluateLag(s, last(s) + 100).status).toBe('OK');
  });
});

describe('evaluateLag — WARN (falling behind)', () => {
  it('lag grows at every step while offsets advance', () => {
    const lags = [12, 40, 80, 120, 170, 210, 260, 300, 340];
    const s = series(lags.map((l, i) => [i * 100, i * 100 + l] as [number, number]));
    const r = evaluateLag(s, last(s) + 50);
    expect(r.status).toBe('WARN');
    expect(r.reason).toBe('falling behind: lag grew 12 → 340 records over 8.0 s');
  });

  it('nearly every step up (one dip) still warns', () => {
    const lags = [10, 11, 12, 13, 12, 14, 15, 16, 17];
    const s = series(lags.map((l, i) => [i * 100, i * 100 + l] as [number, number]));
    expect(evaluateLag(s, last(s)).status).toBe('WARN');
  });

  it('grows by a clear margin even if not monotone', () => {
    const s = series([
      [0, 100],
      [50, 400],
      [300, 500],
      [350, 700],
    ]);
    const r = evaluateLag(s, last(s));
    expect(r.status).toBe('WARN');
    expect(r.reason).toContain('100 → 350');
  });

  it('applied unchanged for less than stopAfterMs with no other information', () => {
    const s = series([
      [10, 30],
      [10, 30],
      [10, 35],
    ]);
    const r = evaluateLag(s, last(s) + 500);
    expect(r.status).toBe('WARN');
    expect(r.reason).toBe('applied stuck at 10 for 2.5 s while end grew +5, lag 25 records');
  });

  it('respects warnGrowthRecords', () => {
    const s = series([
      [0, 100],
      [50, 400],
      [300, 500],
      [350, 700],
    ]);
    expect(evaluateLag(s, last(s), { warnGrowthRecords: 1_000 }).status).toBe('OK');
  });
});

describe('evaluateLag — STALL vs STOP', () => {
  // Applied stuck at 100 for 6 s while the end offset keeps moving.
  const stuckPairs: Array<[number, number]> = Array.from({ length: 7 }, (_, i) => [100, 150 + i * 20]);

  it('no progress and no commit for ≥ stopAfterMs → STOP', () => {
    const s = series(stuckPairs);
    const r = evaluateLag(s, last(s) + 100);
    expect(r.status).toBe('STOP');
    expect(r.reason).toBe('no progress for 6.1 s: applied stuck at 100, lag 170 records, end +120');
  });

  it('commits keep moving but applied does not → STALL', () => {
    const s = series(stuckPairs, { extra: (_i, at) => ({ committedAt: at - 100 }) });
    const r = evaluateLag(s, last(s) + 100);
    expect(r.status).toBe('STALL');
    expect(r.reason).toBe('applied stuck at 100 for 6.1 s (commits continue), lag 170 records, end +120');
  });

  it('known alive (active group) with no commit info → STALL', () => {
    const s = series(stuckPairs, { extra: () => ({ active: true }) });
    const r = evaluateLag(s, last(s) + 100);
    expect(r.status).toBe('STALL');
    expect(r.reason).toContain('replica alive');
  });

  it('inactive group and stale commits → STOP', () => {
    const s = series(stuckPairs, { extra: () => ({ active: false, committedAt: -3_000 }) });
    const r = evaluateLag(s, last(s));
    expect(r.status).toBe('STOP');
    expect(r.reason).toContain('no progress for 9.0 s');
  });

  it('a known old commit makes a short window STOP already', () => {
    const s = series(
      [
        [5, 20],
        [5, 20],
      ],
      { start: 30_000, extra: () => ({ committedAt: 10_000 }) },
    );
    const r = evaluateLag(s, 31_000);
    expect(r.status).toBe('STOP');
    expect(r.reason).toContain('21.0 s');
  });

  it('stuck without the end moving: same STOP, no "end +" note', () => {
    const s = series(Array.from({ length: 7 }, () => [100, 150] as [number, number]));
    const r = evaluateLag(s, last(s));
    expect(r).toEqual({
      status: 'STOP',
      reason: 'no progress for 6.0 s: applied stuck at 100, lag 50 records',
    });
  });

  it('progress earlier in the window, then stuck ≥ stopAfterMs → STOP', () => {
    const s = series([
      [0, 50],
      [10, 60],
      [20, 70],
      [30, 80],
      [30, 90],
      [30, 100],
      [30, 110],
      [30, 120],
      [30, 130],
      [30, 140],
    ]);
    const r = evaluateLag(s, last(s) + 500);
    expect(r.status).toBe('STOP');
    expect(r.reason).toContain('6.5 s');
  });

  it('a lagging commit timestamp does not hide an applied move inside the window', () => {
    const s = series(
      [
        [0, 50],
        [10, 60],
        [20, 70],
        [20, 70],
      ],
      { extra: () => ({ committedAt: -60_000 }) },
    );
    expect(evaluateLag(s, last(s) + 100).status).not.toBe('STOP');
  });

  it('honours stopAfterMs', () => {
    const s = series(stuckPairs);
    expect(evaluateLag(s, last(s), { stopAfterMs: 10_000 }).status).toBe('WARN');
    expect(evaluateLag(s, last(s), { stopAfterMs: 2_000 }).status).toBe('STOP');
  });

  it('newest sample older than stopAfterMs → STOP even when lag was 0', () => {
    const s = series([
      [5, 5],
      [5, 5],
    ]);
    const r = evaluateLag(s, last(s) + 5_000);
    expect(r).toEqual({ status: 'STOP', reason: 'no sample for 5.0 s (last lag 0 records)' });
  });
});

describe('evaluateLag — REWIND', () => {
  it('applied offset going backwards anywhere in the window', () => {
    const s = series([
      [500, 510],
      [505, 520],
      [120, 530],
      [300, 540],
      [520, 540],
    ]);
    const r = evaluateLag(s, last(s));
    expect(r.status).toBe('REWIND');
    expect(r.reason).toBe('applied offset went back 505 → 120 at 2.0 s ago');
  });

  it('wins over a stale window and a zero lag', () => {
    const s = series([
      [50, 50],
      [10, 10],
    ]);
    expect(evaluateLag(s, last(s) + 60_000).status).toBe('REWIND');
  });

  it('an end offset going backwards is not a rewind', () => {
    const s = series([
      [5, 50],
      [10, 40],
      [20, 30],
    ]);
    expect(evaluateLag(s, last(s)).status).toBe('OK');
  });
});

describe('evaluateLag — GAP', () => {
  /** The same samples without a log start: what the other rules say. */
  const plain = (s: LagSample[]): LagSample[] => s.map(({ logStartOffset: _, ...rest }) => rest);
  const REASON =
    "offsets 0–1234 were deleted by retention before this replica applied them; it serves nothing from this partition until it is rebuilt from a peer's snapshot";

  it('applied offset below the log start offset → GAP naming the deleted range', () => {
    const r = evaluateLag([{ at: 1_000, appliedOffset: 0, endOffset: 2_000, logStartOffset: 1_235 }], 1_500);
    expect(r).toEqual({ status: 'GAP', reason: REASON });
  });

  it('names a single deleted offset in the singular', () => {
    expect(gapOf({ at: 0, appliedOffset: 41, endOffset: 50, logStartOffset: 42 })).toBe(
      "offset 41 was deleted by retention before this replica applied it; it serves nothing from this partition until it is rebuilt from a peer's snapshot",
    );
  });

  it('applied exactly at the log start is not a gap, nor 0 at 0, nor above it, nor unknown', () => {
    const at = (appliedOffset: number, logStartOffset: number | undefined, endOffset = 100) =>
      evaluateLag([{ at: 1_000, appliedOffset, endOffset, logStartOffset }], 1_500).status;
    expect(at(0, 0, 0)).toBe('OK');
    expect(at(0, 0)).toBe('WARN'); // lag, one sample: not enough samples
    expect(at(50, 50)).toBe('WARN');
    expect(at(100, 50)).toBe('OK');
    expect(at(7, undefined)).toBe('WARN');
    expect(gapOf({ at: 0, appliedOffset: 50, endOffset: 60, logStartOffset: 50 })).toBeUndefined();
    expect(gapOf({ at: 0, appliedOffset: 0, endOffset: 0, logStartOffset: 0 })).toBeUndefined();
    expect(gapOf({ at: 0, appliedOffset: 3, endOffset: 9 })).toBeUndefined();
    expect(gapOf({ at: 0, appliedOffset: 3, endOffset: 9, logStartOffset: Number.NaN })).toBeUndefined();
  });

  it('is judged on the newest sample only: a replica rebuilt past the log start leaves GAP', () => {
    const s = series(
      [
        [0, 1_000],
        [0, 1_100],
        [1_100, 1_100],
      ],
      { extra: () => ({ logStartOffset: 500 }) },
    );
    expect(evaluateLag(s.slice(0, 2), last(s.slice(0, 2))).status).toBe('GAP');
    expect(evaluateLag(s, last(s)).status).toBe('OK');
  });

  it('wins over REWIND', () => {
    const s = series([
      [800, 900],
      [100, 900],
    ]);
    expect(evaluateLag(s, last(s)).status).toBe('REWIND');
    s[1]!.logStartOffset = 600;
    const r = evaluateLag(s, last(s));
    expect(r.status).toBe('GAP');
    expect(r.reason).toMatch(/^offsets 100–599 were deleted by retention/);
  });

  it('wins over STOP (stale window, no progress, inactive)', () => {
    const stale = [{ at: 0, appliedOffset: 10, endOffset: 500, logStartOffset: 20 }];
    expect(evaluateLag(stale, 60_000).status).toBe('GAP');
    expect(evaluateLag(plain(stale), 60_000).status).toBe('STOP');
    const stuck = series(
      Array.from({ length: 8 }, () => [10, 500] as [number, number]),
      { extra: () => ({ logStartOffset: 20, active: false, committedAt: 0 }) },
    );
    expect(evaluateLag(stuck, last(stuck)).status).toBe('GAP');
    expect(evaluateLag(plain(stuck), last(stuck)).status).toBe('STOP');
  });

  it('wins over STALL (alive, stuck)', () => {
    const s = series(
      Array.from({ length: 8 }, () => [10, 500] as [number, number]),
      { extra: (_, at) => ({ logStartOffset: 20, active: true, committedAt: at }) },
    );
    expect(evaluateLag(s, last(s)).status).toBe('GAP');
    // Without the log start the same window is a STALL: the GAP rule is what decides.
    expect(evaluateLag(plain(s), last(s)).status).toBe('STALL');
  });

  it('wins over WARN (falling behind) and OK (applying, shrinking lag)', () => {
    const growing = series(
      [
        [0, 100],
        [10, 300],
        [20, 500],
        [30, 700],
      ],
      { extra: () => ({ logStartOffset: 31 }) },
    );
    expect(evaluateLag(growing, last(growing)).status).toBe('GAP');
    expect(evaluateLag(plain(growing), last(growing)).status).toBe('WARN');
    const shrinking = series(
      [
        [0, 100],
        [40, 100],
        [80, 100],
      ],
      { extra: () => ({ logStartOffset: 90 }) },
    );
    expect(evaluateLag(shrinking, last(shrinking)).status).toBe('GAP');
    expect(evaluateLag(plain(shrinking), last(shrinking)).status).toBe('OK');
  });

  it('an end offset at or below the applied offset does not hide it', () => {
    // lag 0 would otherwise be OK "caught up"
    const one = [{ at: 0, appliedOffset: 5, endOffset: 5, logStartOffset: 9 }];
    expect(evaluateLag(plain(one), 100).status).toBe('OK');
    const r = evaluateLag(one, 100);
    expect(r.status).toBe('GAP');
    expect(r.reason).toMatch(/^offsets 5–8 were/);
  });

  it('LagWindow keeps the log start and evaluates GAP', () => {
    const w = new LagWindow();
    w.push({ at: 0, appliedOffset: 3, endOffset: 10, logStartOffset: 0 });
    expect(w.evaluate(0).status).toBe('WARN');
    w.push({ at: 1_000, appliedOffset: 3, endOffset: 10, logStartOffset: 4 });
    expect(w.evaluate(1_000).status).toBe('GAP');
    expect(w.latest?.logStartOffset).toBe(4);
  });
});

describe('LagWindow', () => {
  it('prunes to windowMs before the newest sample but keeps it', () => {
    const w = new LagWindow({ windowMs: 3_000 });
    for (const s of series(Array.from({ length: 10 }, (_, i) => [i, i] as [number, number]))) w.push(s);
    expect(w.snapshot().map((s) => s.at)).toEqual([6_000, 7_000, 8_000, 9_000]);
    expect(w.latest?.appliedOffset).toBe(9);
  });

  it('evaluates at `now`: a window whose data stopped arriving goes STOP', () => {
    const w = new LagWindow();
    for (const s of series([
      [0, 0],
      [1, 1],
    ]))
      w.push(s);
    expect(w.evaluate(1_500).status).toBe('OK');
    expect(w.evaluate(60_000).status).toBe('STOP');
    expect(w.size).toBe(2);
  });

  it('drops out-of-order samples and replaces one at the same time', () => {
    const w = new LagWindow();
    expect(w.push({ at: 1_000, appliedOffset: 1, endOffset: 1 })).toBe(true);
    expect(w.push({ at: 500, appliedOffset: 0, endOffset: 1 })).toBe(false);
    expect(w.push({ at: 1_000, appliedOffset: 2, endOffset: 2 })).toBe(true);
    expect(w.snapshot()).toEqual([{ at: 1_000, appliedOffset: 2, endOffset: 2 }]);
  });

  it('a rewind leaves the status once it slides out of the window', () => {
    const w = new LagWindow({ windowMs: 5_000 });
    w.push({ at: 0, appliedOffset: 100, endOffset: 100 });
    w.push({ at: 1_000, appliedOffset: 10, endOffset: 100 });
    expect(w.evaluate(1_000).status).toBe('REWIND');
    for (let t = 2_000; t <= 7_000; t += 1_000) w.push({ at: t, appliedOffset: 100, endOffset: 100 });
    expect(w.evaluate(7_000).status).toBe('OK');
  });

  it('caps the number of samples', () => {
    const w = new LagWindow({ maxSamples: 5 });
    for (let t = 0; t < 100; t++) w.push({ at: t, appliedOffset: t, endOffset: t });
    expect(w.size).toBe(5);
    expect(w.snapshot()[0]!.at).toBe(95);
  });

  it('copies pushed samples', () => {
    const w = new LagWindow();
    const s = { at: 0, appliedOffset: 1, endOffset: 1 };
    w.push(s);
    s.appliedOffset = 99;
    expect(w.latest?.appliedOffset).toBe(1);
  });
});

describe('LagWindows', () => {
  it('keeps one window per key', () => {
    const ws = new LagWindows({ stopAfterMs: 5_000 });
    const a = lagKey('lagoon-replica-node-1', 0);
    const b = lagKey('lagoon-replica-node-2', 0);
    expect(a).toBe('lagoon-replica-node-1/0');
    for (let t = 0; t <= 6_000; t += 1_000) {
      ws.push(a, { at: t, appliedOffset: t, endOffset: t });
      ws.push(b, { at: t, appliedOffset: 3, endOffset: 10 });
    }
    expect(ws.evaluate(a, 6_000).status).toBe('OK');
    expect(ws.evaluate(b, 6_000).status).toBe('STOP');
    expect(ws.evaluate('nope', 6_000)).toEqual({ status: 'WARN', reason: 'no samples' });
    const all = ws.evaluateAll(6_000);
    expect(worstStatus([...all.values()].map((e) => e.status))).toBe('STOP');
    expect(ws.keys().sort()).toEqual([a, b]);
    expect(ws.get(a)?.size).toBeGreaterThan(0);
    expect(ws.delete(b)).toBe(true);
    expect(ws.keys()).toEqual([a]);
  });
});

describe('early warning for a stuck replica', () => {
  it('warns once applied is stuck for stuckWarnMs while the end offset grows, before STALL/STOP', () => {
    const samples = [
      { at: 0, appliedOffset: 100, endOffset: 100 },
      { at: 500, appliedOffset: 110, endOffset: 110 },
      { at: 1000, appliedOffset: 120, endOffset: 125 },
      { at: 1500, appliedOffset: 120, endOffset: 140 },
      { at: 2000, appliedOffset: 120, endOffset: 150 },
      { at: 2600, appliedOffset: 120, endOffset: 165 },
    ];
    const early = evaluateLag(samples.slice(0, 4), 1500);
    expect(early.status).toBe('OK'); // stuck for only 0.5 s: not yet
    const r = evaluateLag(samples, 2600);
    expect(r.status).toBe('WARN');
    expect(r.reason).toMatch(/applied stuck at 120 for 1\.6 s while end grew \+40/);
  });

  it('does not warn for a stuck applied offset when nothing new arrives', () => {
    const samples = [
      { at: 0, appliedOffset: 100, endOffset: 100 },
      { at: 1000, appliedOffset: 120, endOffset: 121 },
      { at: 2000, appliedOffset: 120, endOffset: 121 },
      { at: 3000, appliedOffset: 120, endOffset: 121 },
    ];
    expect(evaluateLag(samples, 3000).status).toBe('OK');
  });
});
