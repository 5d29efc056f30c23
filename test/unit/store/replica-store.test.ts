import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IDEM_WINDOW_MS, WID_WINDOW_MS } from '../../../src/core/decide.js';
import { EMPTY_DIGEST } from '../../../src/core/digest.js';
import { partitionOf } from '../../../src/core/partitioner.js';
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
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({ value: '3' });
    } finally {
      db.close();
    }
    store = ReplicaStore.open(path, { partitions: 3 });
  });

  it('holds its file exclusively: a second connection cannot read it while the store is open', async () => {
    const Database = (await import('better-sqlite3')).default;
    store.applyBatch(0, [rec(0, 1000, 'a', put(1))]);
    const other = new Database(path, { readonly: true, timeout: 50 });
    try {
      expect(() => other.prepare('SELECT count(*) AS n FROM kv').get()).toThrow(/locked|busy/i);
    } finally {
      other.close();
    }
    // A second store on the same file (a second node with the same --db) is refused at once, saying why.
    let second: unknown;
    try {
      ReplicaStore.open(path, { partitions: 3 }).close();
    } catch (e) {
      second = e;
    }
    expect(isLagoonError(second) && second.code).toBe('store_locked');
    store.close();
    const after = new Database(path, { readonly: true });
    try {
      expect(after.prepare('SELECT count(*) AS n FROM kv').get()).toEqual({ n: 1 });
    } finally {
      after.close();
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

  it('opens a schema-1 store: legacy idempotency entries still answer retries, and it becomes schema 3', async () => {
    const Database = (await import('better-sqlite3')).default;
    const old = join(tmp.dir, 'v1.db');
    const db = new Database(old);
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE kv (key TEXT PRIMARY KEY, partition INT NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL,
        updated_at INT NOT NULL, expires_at INT) STRICT, WITHOUT ROWID;
      CREATE TABLE partitions (partition INT PRIMARY KEY, applied_offset INT NOT NULL, digest TEXT NOT NULL,
        records_applied INT NOT NULL, last_record_ts INT) STRICT;
      CREATE TABLE writes (partition INT NOT NULL, offset INT NOT NULL, key TEXT, status TEXT NOT NULL, reason TEXT,
        PRIMARY KEY (partition, offset)) STRICT, WITHOUT ROWID;
      CREATE TABLE idem (idem_key TEXT PRIMARY KEY, version TEXT NOT NULL) STRICT, WITHOUT ROWID;
      INSERT INTO meta VALUES ('schema_version', '1'), ('partitions', '1');
      INSERT INTO partitions VALUES (0, 1, '${EMPTY_DIGEST}', 1, 5);
      INSERT INTO writes VALUES (0, 0, 'a', 'rejected', 'not_found');
      INSERT INTO idem VALUES ('a' || char(31) || 'i', '0-0');
    `);
    db.close();
    const s = ReplicaStore.open(old, { partitions: 1 });
    try {
      expect(s.idemLookup('a', 'i')).toEqual({ version: '0-0', fp: null });
      // No fingerprint was kept: any request under the key is taken for the retry it was before.
      s.applyBatch(0, [rec(1, 6, 'a', put(7, { idem: 'i' }))]);
      expect(s.finalOutcome(0, 1)).toMatchObject({ status: 'rejected', reason: 'not_found', version: '0-0' });
    } finally {
      s.close();
    }
    const check = new Database(old, { readonly: true });
    expect(check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({
      value: '3',
    });
    check.close();
  });

  it('refuses a store from a newer Lagoon', async () => {
    const Database = (await import('better-sqlite3')).default;
    store.close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    expect(() => ReplicaStore.open(path, { partitions: 3 })).toThrow(/schema version 99/);
    const fix = new Database(path);
    fix.prepare("UPDATE meta SET value = '3' WHERE key = 'schema_version'").run();
    fix.close();
    store = ReplicaStore.open(path, { partitions: 3 });
  });

  it('close is idempotent and later calls fail clearly', () => {
    const s = ReplicaStore.open(join(tmp.dir, 'other.db'), { partitions: 1 });
    s.close();
    s.close();
    expect(() => s.get('a')).toThrow(/closed/);
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
    expect(store.get('a')).toBeUndefined();
    expect(store.get('b')).toEqual({
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
    expect(store.get('a')?.value).toBe('3');
  });

  it('accepts offset gaps (transaction markers) and resumes after the last offset', () => {
    store.applyBatch(2, [rec(5, 1, 'a', put(1)), rec(9, 2, 'b', put(2))]);
    expect(store.appliedOffsets().get(2)).toBe(10);
    expect(store.applyBatch(2, [rec(8, 3, 'x', put(0)), rec(12, 4, 'c', put(3))])).toEqual({
      applied: 1,
      skipped: 1,
    });
    expect(store.appliedOffsets().get(2)).toBe(13);
    expect(store.get('x')).toBeUndefined();
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
    expect(store.get('a')).toBeUndefined();
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
    expect(store.idemLookup('b', 'i')?.version).toBe('0-1');
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
    expect(store.get('a')).toMatchObject({ value: '4', version: '0-3' });
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

  it('answers retries of the same request as duplicates, scoped per key; another request is refused', () => {
    const first = put(1, { idem: 'i1' });
    const retry = { ...first, wid: 'retry-1' } as typeof first; // same request, its own record
    store.applyBatch(0, [
      rec(0, 1, 'a', first),
      rec(1, 2, 'a', retry),
      rec(2, 3, 'b', put(3, { idem: 'i1' })),
      rec(3, 4, 'c', put(4, { idem: 'i2', ifMatch: '9-9' })),
      rec(4, 5, 'c', put(4, { idem: 'i2', ifMatch: '9-9' })),
      rec(5, 6, 'a', put(2, { idem: 'i1' })), // same key, other body
      rec(6, 7, 'a', del({ idem: 'i1' })), // same key, other method
      rec(7, 8, 'c', put(4, { idem: 'i2' })), // same key, the condition dropped
    ]);
    expect(store.get('a')?.value).toBe('1');
    expect(store.get('b')?.value).toBe('3');
    expect(store.get('c')).toBeUndefined(); // the first attempt was rejected, the retry is its duplicate
    expect(store.writeOutcome(0, 1)).toMatchObject({ status: 'duplicate', reason: '0-0' });
    expect(store.writeOutcome(0, 4)).toMatchObject({ status: 'duplicate', reason: '0-3' });
    for (const o of [5, 6, 7]) {
      expect(store.writeOutcome(0, o)).toMatchObject({
        status: 'rejected',
        reason: 'idempotency_key_reused',
      });
    }
    // The key still names the first request.
    expect(store.idemLookup('a', 'i1')).toEqual({
      version: '0-0',
      fp: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(store.idemLookup('c', 'i2')?.version).toBe('0-3');
    expect(store.idemLookup('d', 'i1')).toBeUndefined();
    // finalOutcome answers a retry with the original's outcome and version.
    expect(store.finalOutcome(0, 1)).toMatchObject({ status: 'applied', version: '0-0' });
    expect(store.finalOutcome(0, 4)).toMatchObject({
      status: 'rejected',
      reason: 'not_found',
      version: '0-3',
    });
    expect(store.finalOutcome(0, 5)).toMatchObject({ status: 'rejected', reason: 'idempotency_key_reused' });
    expect(store.finalOutcome(0, 99)).toBeUndefined();
  });

  it('forgets idempotency keys after IDEM_WINDOW_MS of log time, and prunes them', () => {
    store.applyBatch(0, [rec(0, 1000, 'a', put(1, { idem: 'i' }))]);
    store.applyBatch(0, [rec(1, 1000 + IDEM_WINDOW_MS - 1, null, hb())]);
    expect(store.idemLookup('a', 'i')?.version).toBe('0-0');
    store.applyBatch(0, [rec(2, 1000 + IDEM_WINDOW_MS, null, hb())]);
    expect(store.idemLookup('a', 'i')).toBeUndefined();
    expect(store.dumpState().idem).toEqual([]);
    // The key is free again: a new request under it is a first attempt.
    store.applyBatch(0, [rec(3, 1000 + IDEM_WINDOW_MS, 'a', put(2, { idem: 'i' }))]);
    expect(store.writeOutcome(0, 3)?.status).toBe('applied');
  });
});

describe('second copies of a record (same write id)', () => {
  it('are applied as duplicates of the first copy: a conditional copy is not decided twice', () => {
    const create = put(1, { ifNoneMatch: true });
    const plain = put(2);
    store.applyBatch(0, [
      rec(0, 1, 'a', create),
      rec(1, 2, 'b', plain),
      rec(2, 3, 'a', create), // copy: deciding it again would say already_exists
      rec(3, 4, 'b', put(3)),
      rec(4, 5, 'b', plain), // copy of a plain put: must not undo the later put
    ]);
    expect(store.writeOutcome(0, 2)).toMatchObject({ status: 'duplicate', reason: '0-0' });
    expect(store.writeOutcome(0, 4)).toMatchObject({ status: 'duplicate', reason: '0-1' });
    expect(store.finalOutcome(0, 2)).toMatchObject({ status: 'applied', version: '0-0' });
    expect(store.get('a')).toMatchObject({ value: '1', version: '0-0' });
    expect(store.get('b')).toMatchObject({ value: '3', version: '0-3' });
    expectDigestsConsistent(store);
  });

  it("a copy of an idempotent retry answers the original; If-Match with a copy's version names the original", () => {
    const w = put(1);
    store.applyBatch(0, [rec(0, 1, 'a', w), rec(1, 2, 'a', w), rec(2, 3, 'a', put(2, { ifMatch: '0-1' }))]);
    // A client acknowledged with the copy's position (0-1) can still use it as If-Match.
    expect(store.writeOutcome(0, 2)?.status).toBe('applied');
    const r = put(5, { idem: 'k' });
    const retry = { ...r, wid: 'retry' } as typeof r;
    store.applyBatch(0, [rec(3, 4, 'z', r), rec(4, 5, 'z', retry), rec(5, 6, 'z', retry)]);
    expect(store.writeOutcome(0, 5)).toMatchObject({ status: 'duplicate', reason: '0-3' });
  });

  it('are remembered for WID_WINDOW_MS of the partition clock, then pruned', () => {
    const w = put(1);
    store.applyBatch(0, [rec(0, 1000, 'a', w)]);
    store.applyBatch(0, [rec(1, 1000 + WID_WINDOW_MS - 1, 'a', w)]);
    expect(store.writeOutcome(0, 1)?.status).toBe('duplicate');
    store.applyBatch(0, [rec(2, 1000 + WID_WINDOW_MS, null, hb())]);
    expect(store.dumpState().wids).toEqual([]);
    store.applyBatch(0, [rec(3, 1000 + WID_WINDOW_MS, 'a', w)]);
    expect(store.writeOutcome(0, 3)?.status).toBe('applied');
  });

  it('are scoped per partition', () => {
    const w = put(1);
    store.applyBatch(0, [rec(0, 1, 'a', w)]);
    store.applyBatch(1, [rec(0, 1, 'a', w)]);
    expect(store.writeOutcome(1, 0)?.status).toBe('applied');
  });
});

describe('TTL', () => {
  it('judges writes and reads by the partition log clock, and purges by it', () => {
    store.applyBatch(0, [rec(0, 1000, 'a', put(1, { ttlMs: 100 }))]);
    expect(store.get('a')).toMatchObject({ expiresAt: 1100 });
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
    expect(store.get('b')).toMatchObject({ updatedAt: 1200, expiresAt: 1210 });
    expectDigestsConsistent(store);
  });

  it('reads agree with conditional writes and across replicas, with producers 5 s apart', () => {
    const other = ReplicaStore.open(join(tmp.dir, 'other.db'), { partitions: 3 });
    try {
      // Node F's clock is 5 s ahead of node S's; they write in turn. Each step: a write, then a probe that
      // changes nothing (a delete with an impossible If-Match, timestamped by the slow node, so it does not move
      // the clock): not_found means "absent at the partition clock", version_mismatch "present".
      const F = 5000;
      const steps: LogRecord[] = [];
      let o = 0;
      const probes: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = 1_000_000 + i * 700;
        const ts = i % 2 === 0 ? t + F : t;
        steps.push(i % 3 === 0 ? rec(o++, ts, 'k', put(i, { ttlMs: 3000 })) : rec(o++, ts, null, hb()));
        probes.push(o);
        steps.push(rec(o++, t - F, 'k', del({ ifMatch: '0-999999' })));
      }
      steps.forEach((r, idx) => {
        for (const s of [store, other]) s.applyBatch(0, [r]);
        if (!probes.includes(r.offset)) {
          // Between a write and its probe: both replicas read the same, and the probe agrees with the read.
          const read = store.get('k');
          expect(other.get('k')).toEqual(read);
          const next = steps[idx + 1]!;
          for (const s of [store, other]) s.applyBatch(0, [next]);
          const verdict = store.writeOutcome(0, next.offset)?.reason;
          expect(verdict).toBe(read === undefined ? 'not_found' : 'version_mismatch');
        }
      });
      expect(other.dumpState()).toEqual(store.dumpState());
    } finally {
      other.close();
    }
  });

  it('overwriting an expired-but-unpurged entry keeps the digest right', () => {
    store.applyBatch(0, [
      rec(0, 1000, 'a', put(1, { ttlMs: 100 })),
      rec(1, 1100, 'a', put(2, { ifNoneMatch: true })),
    ]);
    expect(store.get('a')).toMatchObject({ value: '2', version: '0-1', expiresAt: null });
    expectDigestsConsistent(store);
  });
});

describe('readKey', () => {
  it("returns a key's live entry with its partition's applied offset, as of that read", () => {
    const p = partitionOf('k', 3);
    const q = partitionOf('other', 3) === p ? partitionOf('x', 3) : partitionOf('other', 3);
    store.applyBatch(p, [rec(0, 1000, 'k', put(1)), rec(1, 1001, 'k', put(2, { ttlMs: 50 }))]);
    store.applyBatch(q, [rec(0, 1000, null, hb()), rec(1, 1000, null, hb()), rec(2, 1000, null, hb())]);
    expect(store.readKey('k')).toEqual({ entry: store.get('k'), appliedOffset: 2 });
    expect(store.readKey('k').entry).toMatchObject({ value: '2', version: `${p}-1` });
    // A key that is not there: still its own partition's applied offset (for the session token).
    const missing = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'].find((k) => partitionOf(k, 3) === q)!;
    expect(store.readKey(missing)).toEqual({ entry: undefined, appliedOffset: 3 });
    // Expired by the partition clock: no entry, and the offset that judged it so.
    store.applyBatch(p, [rec(2, 1051, null, hb())]);
    expect(store.readKey('k')).toEqual({ entry: undefined, appliedOffset: 3 });
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
    const all = store.scan({ prefix: '', limit: 100 }).map((e) => e.key);
    const sorted = [...all].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect(all).toEqual(sorted);
    expect(all).toHaveLength(13);
    // U+FFFF (3 bytes) sorts before U+1F600 (4 bytes) in UTF-8, unlike UTF-16 code units.
    expect(all.indexOf('\uffff')).toBeLessThan(all.indexOf('😀'));
    expect(store.scan({ prefix: 'ab', limit: 100 }).map((e) => e.key)).toEqual(['ab', 'abc', 'abd', 'abe']);
    // Expiry by the partition's log clock: 'abe' lives until partition 1's log reaches 1010.
    store.applyBatch(1, [rec(1, 1010, null, hb())]);
    expect(store.scan({ prefix: 'ab', limit: 100 }).map((e) => e.key)).toEqual(['ab', 'abc', 'abd']);
    expect(store.scan({ prefix: 'a', limit: 2 }).map((e) => e.key)).toEqual(['a', 'ab']);
    expect(store.scan({ prefix: 'a', after: 'ab', limit: 2 }).map((e) => e.key)).toEqual(['abc', 'abd']);
    expect(store.scan({ prefix: 'a\u{10ffff}', limit: 10 }).map((e) => e.key)).toEqual([
      'a\u{10ffff}',
      'a\u{10ffff}x',
    ]);
    expect(store.scan({ prefix: '\u{10ffff}', limit: 10 })).toEqual([]);
    expect(store.scan({ prefix: 'q', limit: 10 })).toEqual([]);
    expect(store.scan({ prefix: '', limit: 0 })).toEqual([]);
    expect(store.scan({ prefix: 'b', after: 'a', limit: 10 }).map((e) => e.key)).toEqual(['b']);
    expect(store.scan({ prefix: 'a', after: 'b', limit: 10 })).toEqual([]);
    expect(() => store.scan({ prefix: '', limit: Number.NaN })).toThrow(RangeError);
    expect(() => store.scan({ prefix: '', limit: -1 })).toThrow(RangeError);
  });

  it('pages through everything with the cursor', () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = store.scan({ prefix: '', after, limit: 5 });
      if (page.length === 0) break;
      seen.push(...page.map((e) => e.key));
      after = page.at(-1)!.key;
    }
    expect(seen).toEqual(store.scan({ prefix: '', limit: 100 }).map((e) => e.key));
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
    expect(JSON.parse(store.get('key-7')!.value)).toEqual({ i: n - 5000 + 7 });
    // Redelivering the whole log changes nothing.
    expect(store.applyBatch(0, records.slice(0, 500))).toEqual({ applied: 0, skipped: 500 });
    expect(store.partitionInfo()[0]!.recordsApplied).toBe(n);
  }, 300_000);
});
