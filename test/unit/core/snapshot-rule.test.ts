import { describe, expect, it } from 'vitest';
import { snapshotUnusable } from '../../../src/core/snapshot-rule.js';

const snap = (...offsets: number[]) => ({
  partitions: offsets.map((appliedOffset, partition) => ({ partition, appliedOffset })),
});
const m = (...offsets: number[]) => new Map(offsets.map((o, p) => [p, o]));

describe('snapshotUnusable', () => {
  it('accepts a snapshot at or past both the log start and the local replica, partition by partition', () => {
    expect(snapshotUnusable(snap(10, 20), 2, m(0, 0), m(0, 0))).toBeUndefined();
    expect(snapshotUnusable(snap(10, 20), 2, m(10, 5), m(10, 20))).toBeUndefined();
  });

  it('refuses one older than the log start: the records between would be missing', () => {
    expect(snapshotUnusable(snap(10, 20), 2, m(0, 0), m(0, 21))).toBe(
      'partition 1 at 20, the log starts at 21',
    );
  });

  it('refuses one behind this replica: installing it would move the replica back in time', () => {
    expect(snapshotUnusable(snap(10, 20), 2, m(11, 0), m(0, 0))).toBe(
      'partition 0 at 10, this replica is at 11',
    );
  });

  it('refuses one without every partition', () => {
    expect(snapshotUnusable(snap(10), 2, m(), m())).toBe('partition 1 missing');
  });
});
