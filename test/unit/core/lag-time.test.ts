import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_TIMELINE_POINTS, OffsetTimeline } from '../../../src/core/lag-time.js';

describe('OffsetTimeline — caught up means no lag', () => {
  it('is 0 when applied ≥ end, whatever the table says', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 1_000);
    expect(t.timeLagMs(10, 10, 1_000_000)).toBe(0);
    expect(t.timeLagMs(12, 10, 1_000_000)).toBe(0);
    expect(t.timeLagMs(0, 0, 1_000_000)).toBe(0);
  });

  it('is 0 with an empty table (nothing known beyond "produced by now")', () => {
    const t = new OffsetTimeline();
    expect(t.timeLagMs(0, 5, 10_000)).toBe(0);
  });
});

describe('OffsetTimeline — interpolation over end-offset points', () => {
  const linear = (): OffsetTimeline => {
    const t = new OffsetTimeline();
    t.observeEnd(0, 0);
    t.observeEnd(10, 1_000);
    t.observeEnd(20, 2_000);
    return t;
  };

  it('places record x where the end first reached x + 1 (exact on a table point)', () => {
    const t = linear();
    expect(t.produceTimeOf(9, 20, 5_000)).toBe(1_000);
    expect(t.timeLagMs(9, 20, 5_000)).toBe(4_000);
    expect(t.produceTimeOf(19, 20, 5_000)).toBe(2_000);
  });

  it('interpolates linearly between the two points around the offset', () => {
    const t = linear();
    expect(t.produceTimeOf(14, 20, 5_000)).toBe(1_500);
    expect(t.timeLagMs(14, 20, 5_000)).toBe(3_500);
    expect(t.produceTimeOf(0, 20, 5_000)).toBe(100);
    expect(t.produceTimeOf(17, 20, 5_000)).toBeCloseTo(1_800, 9);
  });

  it('interpolates from the last sighting of the lower end, not its first', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 1_000);
    expect(t.observeEnd(10, 1_500)).toBe(false); // dedupe: no new point
    t.observeEnd(10, 1_900);
    t.observeEnd(20, 2_000);
    expect(t.snapshot().ends).toEqual([
      { offset: 10, firstAt: 1_000, lastAt: 1_900 },
      { offset: 20, firstAt: 2_000, lastAt: 2_000 },
    ]);
    // records 10..19 were produced in (1900, 2000]
    expect(t.produceTimeOf(14, 20, 3_000)).toBe(1_950);
    expect(t.timeLagMs(14, 20, 3_000)).toBe(1_050);
  });

  it('keeps the FIRST time an end offset was seen as that point’s time', () => {
    const t = new OffsetTimeline();
    t.observeEnd(5, 100);
    t.observeEnd(5, 900);
    t.observeEnd(9, 1_000);
    expect(t.produceTimeOf(4, 9, 2_000)).toBe(100);
    expect(t.timeLagMs(4, 9, 2_000)).toBe(1_900);
  });

  it('an idle partition that suddenly gets a write does not show the idle period as lag', () => {
    const t = new OffsetTimeline();
    for (let at = 0; at <= 3_600_000; at += 1_000) t.observeEnd(100, at);
    t.observeEnd(101, 3_601_000);
    expect(t.timeLagMs(100, 101, 3_601_500)).toBe(500);
    // several writes landed between two polls: spread over (last idle sighting, first new sighting]
    t.observeEnd(105, 3_602_000);
    expect(t.timeLagMs(101, 105, 3_602_000)).toBe(750);
  });

  it('older than the table: uses the oldest point’s time (a conservative lower bound)', () => {
    const t = new OffsetTimeline();
    t.observeEnd(100, 5_000);
    t.observeEnd(200, 6_000);
    expect(t.produceTimeOf(20, 200, 10_000)).toBe(5_000);
    expect(t.timeLagMs(20, 200, 10_000)).toBe(5_000);
  });

  it('newer than the table: interpolates towards (end, now) without storing it', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 1_000);
    expect(t.produceTimeOf(12, 20, 2_000)).toBe(1_300);
    expect(t.timeLagMs(12, 20, 2_000)).toBe(700);
    expect(t.endPointCount).toBe(1);
  });

  it('ignores a smaller (stale) end offset and clamps time to stay monotone', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 1_000);
    expect(t.observeEnd(8, 2_000)).toBe(false);
    expect(t.observeEnd(12, 900)).toBe(true);
    expect(t.snapshot().ends).toEqual([
      { offset: 10, firstAt: 1_000, lastAt: 1_000 },
      { offset: 12, firstAt: 1_000, lastAt: 1_000 },
    ]);
  });

  it('ignores invalid input', () => {
    const t = new OffsetTimeline();
    expect(t.observeEnd(Number.NaN, 1)).toBe(false);
    expect(t.observeEnd(-1, 1)).toBe(false);
    expect(t.observeEnd(1, Number.POSITIVE_INFINITY)).toBe(false);
    t.observeRecord(-3, 5);
    t.observeRecord(3, Number.NaN);
    expect(t.endPointCount).toBe(0);
    expect(t.recordPointCount).toBe(0);
  });

  it('never returns a negative lag', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 5_000);
    expect(t.timeLagMs(9, 10, 1_000)).toBe(0);
    t.observeRecord(3, 9_999);
    expect(t.timeLagMs(3, 10, 5_000)).toBe(0);
  });

  it('reset() forgets everything', () => {
    const t = new OffsetTimeline();
    t.observeEnd(10, 1_000);
    t.observeRecord(3, 500);
    t.reset();
    expect(t.endPointCount).toBe(0);
    expect(t.recordPointCount).toBe(0);
    expect(t.observeEnd(2, 3_000)).toBe(true);
  });
});

describe('OffsetTimeline — exact record timestamps', () => {
  it('are preferred over the end table when they cover the offset', () => {
    const t = new OffsetTimeline();
    t.observeEnd(0, 0);
    t.observeEnd(100, 10_000);
    t.observeRecord(40, 2_345);
    expect(t.produceTimeOf(40, 100, 20_000)).toBe(2_345);
    expect(t.timeLagMs(40, 100, 20_000)).toBe(17_655);
  });

  it('interpolate between known records, and fall back to the end table outside them', () => {
    const t = new OffsetTimeline();
    t.observeEnd(0, 0);
    t.observeEnd(100, 10_000);
    t.observeRecord(50, 6_000);
    t.observeRecord(40, 3_000); // out of order
    expect(t.produceTimeOf(45, 100, 20_000)).toBe(4_500);
    // below the oldest record: end table (record 9 → end 10 → 1000 ms)
    expect(t.produceTimeOf(9, 100, 20_000)).toBe(1_000);
    // above the newest record: end table
    expect(t.produceTimeOf(79, 100, 20_000)).toBe(8_000);
  });

  it('overwrite an offset observed twice', () => {
    const t = new OffsetTimeline();
    t.observeRecord(5, 100);
    t.observeRecord(9, 200);
    t.observeRecord(5, 150);
    expect(t.snapshot().records).toEqual([
      { offset: 5, timestamp: 150 },
      { offset: 9, timestamp: 200 },
    ]);
  });

  it('give another replica behind this one its lag from real produce times', () => {
    const t = new OffsetTimeline();
    for (let o = 0; o < 500; o++) t.observeRecord(o, 1_000 + o * 10); // this node applied 0..499
    t.observeEnd(500, 6_000);
    expect(t.timeLagMs(123, 500, 10_000)).toBe(10_000 - (1_000 + 1_230));
    expect(t.timeLagMs(500, 500, 10_000)).toBe(0);
  });
});

describe('OffsetTimeline — heartbeat-driven idle partitions', () => {
  it('show no false lag while a heartbeat moves the end offset every second', () => {
    const t = new OffsetTimeline();
    let worst = 0;
    let nonZero = 0;
    // A heartbeat record is produced at k·1000 ms; the replica applies it 200 ms later; we poll every 250 ms.
    for (let now = 0; now <= 120_000; now += 250) {
      const k = Math.floor(now / 1_000);
      const end = k + 1;
      const applied = now % 1_000 >= 200 ? end : end - 1;
      t.observeEnd(end, now);
      const lag = t.timeLagMs(applied, end, now);
      worst = Math.max(worst, lag);
      if (lag > 0) nonZero++;
    }
    expect(worst).toBeLessThanOrEqual(250);
    expect(nonZero).toBe(0); // the only polls with applied < end are those that first see the new end
  });

  it('still measures real lag when the replica stops while heartbeats go on', () => {
    const t = new OffsetTimeline();
    for (let now = 0; now <= 60_000; now += 250) t.observeEnd(Math.floor(now / 1_000) + 1, now);
    // Replica stopped with applied = 5: record 5 is the heartbeat produced at 5 s, first seen at 5000 ms.
    expect(t.timeLagMs(5, 61, 60_000)).toBe(55_000);
  });
});

describe('OffsetTimeline — bounded memory', () => {
  it('keeps at most maxPoints end points, keeping the oldest and newest', () => {
    const t = new OffsetTimeline();
    for (let i = 1; i <= 10_000; i++) t.observeEnd(i * 10, i * 1_000);
    expect(t.endPointCount).toBeLessThanOrEqual(DEFAULT_MAX_TIMELINE_POINTS);
    expect(t.endPointCount).toBeGreaterThan(DEFAULT_MAX_TIMELINE_POINTS / 2);
    const { ends } = t.snapshot();
    expect(ends[0]!.offset).toBe(10);
    expect(ends[ends.length - 1]!.offset).toBe(100_000);
    // a steady produce rate stays exactly interpolated after thinning
    expect(t.produceTimeOf(12_344, 100_000, 10_000_000)).toBeCloseTo(1_234_500, 6);
    expect(t.produceTimeOf(99_989, 100_000, 10_000_000)).toBeCloseTo(9_999_000, 6);
  });

  it('thins evenly: offsets stay spread over the whole span', () => {
    const t = new OffsetTimeline({ maxPoints: 8 });
    for (let i = 1; i <= 9; i++) t.observeEnd(i, i * 100);
    expect(t.snapshot().ends.map((p) => p.offset)).toEqual([1, 3, 5, 7, 9]);
  });

  it('bounds the record table too', () => {
    const t = new OffsetTimeline({ maxPoints: 50 });
    for (let o = 0; o < 5_000; o++) t.observeRecord(o, o * 2);
    expect(t.recordPointCount).toBeLessThanOrEqual(50);
    expect(t.produceTimeOf(1_234, 5_000, 1e9)).toBeCloseTo(2_468, 6);
    const { records } = t.snapshot();
    expect(records[0]!.offset).toBe(0);
    expect(records[records.length - 1]!.offset).toBe(4_999);
  });
});
