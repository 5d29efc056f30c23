import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMPTY_DIGEST } from '../../../src/core/digest.js';
import { isLagoonError } from '../../../src/errors.js';
import { type LogRecord, ReplicaStore } from '../../../src/store/replica-store.js';
import { del, hb, put, rec, recomputeDigests, tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let store: ReplicaStore;
let path: string;

beforeEach(() => {
  tmp = tempDir();
  path = join(tmp.dir, 'replica.db');
  store = ReplicaStore.open(path, { partitions: 3 });
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

function expectDigestsConsistent(s: ReplicaStore): void {
  const dump = s.dumpState();
  const re = recomputeDigests(dump);
  for (const p of dump.partitions) expect(p.digest, `partition ${p.partition}`).toBe(re.get(p.partition));
}

describe('ReplicaStore.open', () => {
  it('starts empty with one row per partition', () => {
    expect(store.appliedOffsets()).toEqual(
      new Map([
        [0, 0],
        [1, 0],
        [2, 0],
      ]),
    );
    expect(store.partitionInfo()[0]).toEqual({
      partition: 0,
      appliedOffset: 0,
      digest: EMPTY_DIGEST,
      recordsApplied: 0,
      lastRecordTs: null,
    });
    expect(store.digests()).toHaveLength(3);
  });

  it('uses WAL and synchronous=FULL', async () => {
    const Database = (await import('better-sqlite3')).default;
    store.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({ value: '1' });
    } finally {
      db.close();
    }
    store = ReplicaStore.open(path, { partitions: 3 });
  });

  it('refuses a store built for another partition count', () => {
    store.close();
    try {
      ReplicaStore.open(path, { partitions: 4 });
      expect.unreachable();
    } catch (e) {
      expect(isLagoonError(e) && e.code).toBe('store_partition_mismatch');
    }
    store = ReplicaStore.open(path, { partitions: 3 });
  });

  it('close is idempotent and later calls fail clearly', () => {
    const s = ReplicaStore.open(join(tmp.dir, 'other.db'), { partitions: 1 });
    s.close();
    s.close();
    expect(() => s.get('a', 0)).toThrow(/closed/);
  });
});

describe('applyBatch', () => {
  it('applies puts and deletes, advancing offsets and counters', () => {
    const r = store.applyBatch(1, [
      rec(0, 100, 'a', put({ x: 1 })),
      rec(1, 101, 'b', put('two')),
      rec(2, 102, 'a', del()),
      rec(3, 103, null, hb()),
    ]);
    expect(r).toEqual({ applied: 4, skipped: 0 });
    expect(store.get('a', 0)).toBeUndefined();
    expect(store.get('b', 0)).toEqual({
      key: 'b',
      value: '"two"',
      version: '1-1',
      updatedAt: 101,
      expiresAt: null,
    });
    expect(store.partitionInfo()[1]).toMatchObject({
      appliedOffset: 4,
      recordsApplied: 4,
      lastRecordTs: 103,
    });
    expect(store.writeOutcome(1, 0)).toEqual({
      partition: 1,
      offset: 0,
      key: 'a',
      status: 'applied',
      reason: null,
    });
    expect(store.writeOutcome(1, 3)).toBeUndefined(); // heartbeats are not writes
    expect(store.writeOutcome(1, 9)).toBeUndefined();
    expectDigestsConsistent(store);
  });

  it('redelivery of an already-applied batch changes nothing', () => {
    const batch = [
      rec(0, 1, 'a', put(1)),
      rec(1, 2, 'b', put(2)),
      rec(2, 3, 'a', put(3, { ifMatch: '0-0' })),
    ];
    store.applyBatch(0, batch);
    const before = store.dumpState();
    expect(store.applyBatch(0, batch)).toEqual({ applied: 0, skipped: 3 });
    expect(store.dumpState()).toEqual(before);
    // Partial overlap: only the new tail is applied.
    expect(store.applyBatch(0, [...batch.slice(1), rec(3, 4, 'c', put(4))])).toEqual({
      applied: 1,
      skipped: 2,
    });
    expect(store.partitionInfo()[0]).toMatchObject({ appliedOffset: 4, recordsApplied: 4 });
    expect(store.get('a', 0)?.value).toBe('3');
  });

  it('accepts offset gaps (transaction markers) and resumes after the last offset', () => {
    store.applyBatch(2, [rec(5, 1, 'a', put(1)), rec(9, 2, 'b', put(2))]);
    expect(store.appliedOffsets().get(2)).toBe(10);
    expect(store.applyBatch(2, [rec(8, 3, 'x', put(0)), rec(12, 4, 'c', put(3))])).toEqual({
      applied: 1,
      skipped: 1,
    });
    expect(store.appliedOffsets().get(2)).toBe(13);
    expect(store.get('x', 0)).toBeUndefined();
    expect(store.partitionInfo()[2]?.recordsApplied).toBe(3);
  });

  it('refuses out-of-order offsets and bad partitions, without effect', () => {
    expect(() => store.applyBatch(0, [rec(2, 1, 'a', put(1)), rec(1, 1, 'b', put(1))])).toThrow(RangeError);
    expect(() => store.applyBatch(0, [rec(2, 1, 'a', put(1)), rec(2, 1, 'b', put(1))])).toThrow(RangeError);
    expect(() => store.applyBatch(3, [rec(0, 1, 'a', put(1))])).toThrow(RangeError);
    expect(() => store.applyBatch(-1, [])).toThrow(RangeError);
    expect(() => store.applyBatch(0, [{ ...rec(0, 1, 'a', put(1)), timestamp: Number.NaN }])).toThrow(
      RangeError,
    );
    expect(store.get('a', 0)).toBeUndefined();
    expect(store.applyBatch(0, [])).toEqual({ applied: 0, skipped: 0 });
    expect(store.appliedOffsets().get(0)).toBe(0);
  });

  it('a failure mid-batch commits nothing of the batch', () => {
    store.applyBatch(0, [rec(0, 1, 'a', put(1))]);
    const before = store.dumpState();
    expect(() =>
      store.applyBatch(0, [rec(1, 2, 'a', put(2)), rec(2, 3, 'b', put(3))], {
        afterRecord: (offset) => {
          if (offset === 2) throw new Error('crash');
        },
      }),
    ).toThrow('crash');
    expect(store.dumpState()).toEqual(before);
    store.applyBatch(0, [rec(1, 2, 'a', put(2)), rec(2, 3, 'b', put(3))]);
    expect(store.partitionInfo()[0]).toMatchObject({ appliedOffset: 3, recordsApplied: 3 });
  });

  it('survives close and reopen', () => {
    store.applyBatch(0, [rec(0, 1, 'a', put(1)), rec(1, 2, 'b', put(2, { idem: 'i' }))]);
    const before = store.dumpState();
    store.close();
    store = ReplicaStore.open(path, { partitions: 3 });
    expect(store.dumpState()).toEqual(before);
    expect(store.idemLookup('b', 'i')).toBe('0-1');
  });

  it('records conditional outcomes and decides by log order', () => {
    store.applyBatch(0, [
      rec(0, 1, 'a', put(1, { ifNoneMatch: true })),
      rec(1, 2, 'a', put(2, { ifNoneMatch: true })),
      rec(2, 3, 'a', put(3, { ifMatch: '0-1' })),
      rec(3, 4, 'a', put(4, { ifMatch: '0-0' })),
      rec(4, 5, 'z', del({ ifMatch: '*' })),
      rec(5, 6, 'z', del()),
    ]);
    const statuses = [0, 1, 2, 3, 4, 5].map((o) => {
      const w = store.writeOutcome(0, o);
      return `${w?.status}:${w?.reason}`;
    });
    expect(statuses).toEqual([
      'applied:null',
      'rejected:already_exists',
      'rejected:version_mismatch',
      'applied:null',
      'rejected:not_found',
      'applied:null',
    ]);
    expect(store.get('a', 0)).toMatchObject({ value: '4', version: '0-3' });
  });

  it('rejects poison records deterministically instead of failing', () => {
    const poison: LogRecord[] = [
      { offset: 0, timestamp: 1, key: Buffer.from('a'), value: Buffer.from('{not json') },
      { offset: 1, timestamp: 2, key: null, value: null },
      {
        offset: 2,
        timestamp: 3,
        key: Buffer.from([0xff]),
        value: Buffer.from('{"v":1,"op":"del","wid":"w"}'),
      },
    ];
    expect(store.applyBatch(0, poison)).toEqual({ applied: 3, skipped: 0 });
    expect(store.writeOutcome(0, 0)).toMatchObject({
      key: 'a',
      status: 'rejected',
      reason: 'invalid_record',
    });
    expect(store.writeOutcome(0, 1)).toMatchObject({
      key: null,
      status: 'rejected',
      reason: 'invalid_record',
    });
    expect(store.writeOutcome(0, 2)).toMatchObject({ key: '\ufffd', status: 'rejected' });
    expect(store.partitionInfo()[0]).toMatchObject({
      appliedOffset: 3,
      recordsApplied: 3,
      digest: EMPTY_DIGEST,
    });
  });

  it('answers retries with the same idempotency key as duplicates, scoped per key', () => {
    store.applyBatch(0, [
      rec(0, 1, 'a', put(1, { idem: 'i1' })),
      rec(1, 2, 'a', put(2, { idem: 'i1' })),
      rec(2, 3, 'b', put(3, { idem: 'i1' })),
      rec(3, 4, 'c', put(4, { idem: 'i2', ifMatch: '9-9' })),
      rec(4, 5, 'c', put(5, { idem: 'i2' })),
      rec(5, 6, 'a', del({ idem: 'i1' })),
    ]);
    expect(store.get('a', 0)?.value).toBe('1');
    expect(store.get('b', 0)?.value).toBe('3');
    expect(store.get('c', 0)).toBeUndefined(); // the first attempt was rejected, the retry is its duplicate
    expect(store.writeOutcome(0, 1)).toMatchObject({ status: 'duplicate', reason: '0-0' });
    expect(store.writeOutcome(0, 4)).toMatchObject({ status: 'duplicate', reason: '0-3' });
    expect(store.writeOutcome(0, 5)).toMatchObject({ status: 'duplicate', reason: '0-0' });
    expect(store.idemLookup('a', 'i1')).toBe('0-0');
    expect(store.idemLookup('c', 'i2')).toBe('0-3');
    expect(store.idemLookup('d', 'i1')).toBeUndefined();
  });
});

describe('TTL', () => {
  it('judges writes by log time, reads by wall-clock time, and purges by log time', () => {
    store.applyBatch(0, [rec(0, 1000, 'a', put(1, { ttlMs: 100 }))]);
    expect(store.get('a', 1099)).toMatchObject({ expiresAt: 1100 });
    expect(store.get('a', 1100)).toBeUndefined();
    // At log time 1099 the key still exists: If-None-Match fails.
    store.applyBatch(0, [rec(1, 1099, 'a', put(2, { ifNoneMatch: true }))]);
    expect(store.writeOutcome(0, 1)?.reason).toBe('already_exists');
    expect(store.dumpState().kv).toHaveLength(1);
    // A heartbeat at log time 1100 expires it: the row is purged and the digest follows.
    store.applyBatch(0, [rec(2, 1100, null, hb())]);
    expect(store.dumpState().kv).toHaveLength(0);
    expect(store.partitionInfo()[0]?.digest).toBe(EMPTY_DIGEST);
  });

  it('If-Match on an expired entry is not_found; the log clock never runs backwards', () => {
    store.applyBatch(0, [rec(0, 1000, 'a', put(1, { ttlMs: 100 })), rec(1, 1200, null, hb())]);
    // A producer with a slow clock: CreateTime 1050 < partition clock 1200, so the key is still expired.
    store.applyBatch(0, [
      rec(2, 1050, 'a', put(2, { ifMatch: '0-0' })),
      rec(3, 1060, 'b', put(3, { ttlMs: 10 })),
    ]);
    expect(store.writeOutcome(0, 2)?.reason).toBe('not_found');
    expect(store.partitionInfo()[0]?.lastRecordTs).toBe(1200);
    // 'b' was written at log time 1200 (the clock), so it expires at 1210, and updatedAt is the clock too.
    expect(store.get('b', 0)).toMatchObject({ updatedAt: 1200, expiresAt: 1210 });
    expectDigestsConsistent(store);
  });

  it('overwriting an expired-but-unpurged entry keeps the digest right', () => {
    store.applyBatch(0, [
      rec(0, 1000, 'a', put(1, { ttlMs: 100 })),
      rec(1, 1100, 'a', put(2, { ifNoneMatch: true })),
    ]);
    expect(store.get('a', 0)).toMatchObject({ value: '2', version: '0-1', expiresAt: null });
    expectDigestsConsistent(store);
  });
});

describe('reads', () => {
  beforeEach(() => {
    const keys = [
      'a',
      'ab',
      'abc',
      'abd',
      'ac',
      'b',
      'a\u{10ffff}',
      'a\u{10ffff}x',
      'é',
      'z',
      '😀',
      '\uffff',
    ];
    store.applyBatch(
      0,
      keys.map((k, i) => rec(i, 1000, k, put(i))),
    );
    store.applyBatch(1, [rec(0, 1000, 'abe', put('ttl', { ttlMs: 10 }))]);
  });

  it('scans in UTF-8 byte order with prefix and cursor', () => {
    const all = store.scan({ prefix: '', limit: 100, nowMs: 0 }).map((e) => e.key);
    const sorted = [...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(all).toEqual(sorted);
    expect(all).toHaveLength(13);
    // U+FFFF (3 bytes) sorts before U+1F600 (4 bytes) in UTF-8, unlike UTF-16 code units.
    expect(all.indexOf('\uffff')).toBeLessThan(all.indexOf('😀'));
    expect(store.scan({ prefix: 'ab', limit: 100, nowMs: 0 }).map((e) => e.key)).toEqual([
      'ab',
      'abc',
      'abd',
      'abe',
    ]);
    expect(store.scan({ prefix: 'ab', limit: 100, nowMs: 1010 }).map((e) => e.key)).toEqual([
      'ab',
      'abc',
      'abd',
    ]);
    expect(store.scan({ prefix: 'a', limit: 2, nowMs: 0 }).map((e) => e.key)).toEqual(['a', 'ab']);
    expect(store.scan({ prefix: 'a', after: 'ab', limit: 2, nowMs: 0 }).map((e) => e.key)).toEqual([
      'abc',
      'abd',
    ]);
    expect(store.scan({ prefix: 'a\u{10ffff}', limit: 10, nowMs: 0 }).map((e) => e.key)).toEqual([
      'a\u{10ffff}',
      'a\u{10ffff}x',
    ]);
    expect(store.scan({ prefix: '\u{10ffff}', limit: 10, nowMs: 0 })).toEqual([]);
    expect(store.scan({ prefix: 'q', limit: 10, nowMs: 0 })).toEqual([]);
    expect(store.scan({ prefix: '', limit: 0, nowMs: 0 })).toEqual([]);
    expect(store.scan({ prefix: 'b', after: 'a', limit: 10, nowMs: 0 }).map((e) => e.key)).toEqual(['b']);
    expect(store.scan({ prefix: 'a', after: 'b', limit: 10, nowMs: 0 })).toEqual([]);
    expect(() => store.scan({ prefix: '', limit: Number.NaN, nowMs: 0 })).toThrow(RangeError);
    expect(() => store.scan({ prefix: '', limit: -1, nowMs: 0 })).toThrow(RangeError);
  });

  it('pages through everything with the cursor', () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = store.scan({ prefix: '', after, limit: 5, nowMs: 0 });
      if (page.length === 0) break;
      seen.push(...page.map((e) => e.key));
      after = page.at(-1)!.key;
    }
    expect(seen).toEqual(store.scan({ prefix: '', limit: 100, nowMs: 0 }).map((e) => e.key));
  });
});

describe('large batches', () => {
  // The apply *rate* is a benchmark figure (`npm run bench`, against raw better-sqlite3 in the same run);
  // here only what is deterministic: every record applied exactly once, offsets and counters with it.
  it('applies 50k small records in batches of 500, each batch with its offset', () => {
    const n = 50_000;
    const records: LogRecord[] = [];
    for (let i = 0; i < n; i++) records.push(rec(i, 1000 + i, `key-${i % 5000}`, put({ i })));
    for (let i = 0; i < n; i += 500) {
      expect(store.applyBatch(0, records.slice(i, i + 500))).toEqual({ applied: 500, skipped: 0 });
      expect(store.appliedOffsets().get(0)).toBe(i + 500);
    }
    const info = store.partitionInfo()[0]!;
    expect(info.recordsApplied).toBe(n);
    expect(info.appliedOffset).toBe(n);
    // The last write of each key wins: key-k holds i = n - 5000 + k.
    expect(JSON.parse(store.get('key-7', 0)!.value)).toEqual({ i: n - 5000 + 7 });
    // Redelivering the whole log changes nothing.
    expect(store.applyBatch(0, records.slice(0, 500))).toEqual({ applied: 0, skipped: 500 });
    expect(store.partitionInfo()[0]!.recordsApplied).toBe(n);
  });
});
