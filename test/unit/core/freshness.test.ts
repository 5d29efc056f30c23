import { describe, expect, it } from 'vitest';
import { Freshness } from '../../../src/core/freshness.js';

describe('Freshness', () => {
  it('is unbounded until an observation has been reached', () => {
    const f = new Freshness();
    expect(f.stalenessMs(0, 1000)).toBe(Number.POSITIVE_INFINITY);
    f.observeEnd(0, 10, 100);
    expect(f.stalenessMs(0, 1000)).toBe(Number.POSITIVE_INFINITY);
    expect(f.lagRecords(0)).toBe(10);
  });

  it('bounds staleness by the time of the newest end offset the replica reached', () => {
    const f = new Freshness();
    f.observeEnd(0, 10, 100);
    f.observeEnd(0, 20, 200);
    f.observeApplied(0, 15); // reached the first observation only
    expect(f.stalenessMs(0, 250)).toBe(150);
    expect(f.lagRecords(0)).toBe(5);
    f.observeApplied(0, 20);
    expect(f.stalenessMs(0, 250)).toBe(50);
    expect(f.lagRecords(0)).toBe(0);
  });

  it('an idle, caught-up partition stays fresh as observations keep coming', () => {
    const f = new Freshness();
    f.observeApplied(0, 5);
    for (let t = 0; t <= 10_000; t += 500) f.observeEnd(0, 5, t);
    expect(f.stalenessMs(0, 10_100)).toBe(100);
    expect(f.lagRecords(0)).toBe(0);
  });

  it('lag is never negative, even when the replica is ahead of a stale observation', () => {
    const f = new Freshness();
    f.observeEnd(0, 3, 10);
    f.observeApplied(0, 8);
    expect(f.lagRecords(0)).toBe(0);
    expect(f.stalenessMs(0, 20)).toBe(10);
  });

  it('keeps partitions apart and ignores applied offsets going backwards', () => {
    const f = new Freshness();
    f.observeEnd(1, 4, 100);
    f.observeApplied(1, 4);
    f.observeApplied(1, 2);
    expect(f.lagRecords(1)).toBe(0);
    expect(f.stalenessMs(0, 200)).toBe(Number.POSITIVE_INFINITY);
    expect(f.stalenessMs(1, 200)).toBe(100);
  });

  it('gives no record-lag bound from an end offset older than the allowed age', () => {
    const f = new Freshness();
    f.observeApplied(0, 5);
    f.observeEnd(0, 5, 1000);
    expect(f.lagRecordsBound(0, 1500, 1000)).toBe(0);
    // Cut off from Kafka: the last end offset is 0 records ahead, but it is old.
    expect(f.lagRecordsBound(0, 5000, 1000)).toBe(Number.POSITIVE_INFINITY);
    expect(f.lagRecordsBound(1, 5000, 1000)).toBe(Number.POSITIVE_INFINITY);
    f.observeEnd(0, 9, 4900);
    expect(f.lagRecordsBound(0, 5000, 1000)).toBe(4);
  });
});
