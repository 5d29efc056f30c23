import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLagoonError } from '../../../src/errors.js';
import { type LogRecord, ReplicaStore } from '../../../src/store/replica-store.js';
import { del, hb, put, rec, tempDir } from './fixtures.js';

/**
 * Bounded bookkeeping: verdicts (`writes`), idempotency keys and write ids are purged by the partition's log
 * clock (record timestamps), never by a replica's own clock — so two replicas fed the same records hold the same
 * rows at equal offsets, however their batches were cut, and their digests stay equal.
 */

const RETENTION = 60_000;
const T0 = 1_800_000_000_000;

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

/** One partition's log: writes with idempotency keys for 2 minutes of log time, then a quiet gap, then more. */
function log(): LogRecord[] {
  const out: LogRecord[] = [];
  let offset = 0;
  for (let i = 0; i < 40; i++) {
    const t = T0 + i * 3000;
    const key = `k${i % 5}`;
    out.push(rec(offset++, t, key, i % 7 === 6 ? del({ idem: `i${i}` }) : put({ i }, { idem: `i${i}` })));
    if (i % 4 === 0) out.push(rec(offset++, t + 1, null, hb()));
  }
  // A retry of an early request, after its idempotency key aged out: applied again, not a duplicate.
  out.push(rec(offset++, T0 + 200_000, 'k0', put({ i: 0 }, { idem: 'i0' })));
  // Its retry a moment later: remembered now, a duplicate of the one just applied.
  out.push(rec(offset++, T0 + 200_001, 'k0', put({ i: 0 }, { idem: 'i0' })));
  return out;
}

/** Applies `records` to `store` in batches of the given sizes (cycled). */
function feed(store: ReplicaStore, records: LogRecord[], sizes: number[]): void {
  let i = 0;
  for (let n = 0; i < records.length; n++) {
    const size = sizes[n % sizes.length]!;
    store.applyBatch(0, records.slice(i, i + size));
    i += size;
  }
}

describe('bookkeeping retention', () => {
  it('two stores fed the same records purge the same rows, by log time, and keep equal digests', () => {
    const records = log();
    const a = ReplicaStore.open(join(tmp.dir, 'a.db'), { partitions: 1, retentionMs: RETENTION });
    const b = ReplicaStore.open(join(tmp.dir, 'b.db'), { partitions: 1, retentionMs: RETENTION });
    try {
      // Up to just before the gap: nothing is older than the retention yet on either store.
      const beforeGap = records.findIndex((r) => r.timestamp >= T0 + 200_000);
      feed(a, records.slice(0, beforeGap), [1000]);
      feed(b, records.slice(0, beforeGap), [1, 4, 2, 7]);
      const before = a.dumpState();
      expect(b.dumpState()).toEqual(before);
      expect(b.digests()).toEqual(a.digests());
      // Verdicts older than the retention by the partition clock (the last record's log time) are gone already.
      const clock = before.partitions[0]!.lastRecordTs!;
      expect(before.writes.every((w) => w.at !== null && clock - w.at < RETENTION)).toBe(true);
      expect(before.writes.length).toBeGreaterThan(0);
      expect(before.writes.length).toBeLessThan(40);
      expect(before.idem.every((e) => e.at !== null && clock - e.at < RETENTION)).toBe(true);

      // The records after the gap move the log clock: the purge drops every older row on both stores alike.
      feed(a, records.slice(beforeGap), [2]);
      feed(b, records.slice(beforeGap), [1]);
      const after = a.dumpState();
      expect(b.dumpState()).toEqual(after);
      expect(b.digests()).toEqual(a.digests());
      // Purging bookkeeping never touches the data: the digest covers kv only, and kv is what the log says.
      expect(after.kv.map((e) => e.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
      const end = after.partitions[0]!.lastRecordTs!;
      expect(end).toBe(T0 + 200_001);
      expect(after.writes.map((w) => [w.offset, w.status, w.reason])).toEqual([
        [records.length - 2, 'applied', null],
        [records.length - 1, 'duplicate', `0-${records.length - 2}`],
      ]);
      expect(after.idem.map((e) => e.idemKey.split('\u001f')[1])).toEqual(['i0']);
      expect(after.wids.every((w) => end - w.at < RETENTION)).toBe(true);
      expect(a.writeOutcome(0, 0)).toBeUndefined();
      expect(a.idemLookup('k1', 'i1')).toBeUndefined();
    } finally {
      a.close();
      b.close();
    }
  });

  it('a store is bound to its retention: reopening with another one is refused, with the way out', () => {
    const path = join(tmp.dir, 'r.db');
    ReplicaStore.open(path, { partitions: 1, retentionMs: RETENTION }).close();
    try {
      ReplicaStore.open(path, { partitions: 1, retentionMs: RETENTION * 2 });
      expect.unreachable();
    } catch (e) {
      expect(isLagoonError(e) && e.code).toBe('store_retention_mismatch');
      expect((e as Error).message).toContain('LAGOON_BOOKKEEPING_RETENTION_MS');
    }
    ReplicaStore.open(path, { partitions: 1, retentionMs: RETENTION }).close();
  });
});
