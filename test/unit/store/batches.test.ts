import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BatchOpInput, batchParts, encodePart, txTagOf } from '../../../src/core/batch.js';
import { partitionOf } from '../../../src/core/partitioner.js';
import { encodeKey } from '../../../src/core/record.js';
import { type Step, TxSequencer } from '../../../src/core/tx-sequencer.js';
import { type LogRecord, ReplicaStore } from '../../../src/store/replica-store.js';
import { put, rec, recomputeDigests, tempDir } from './fixtures.js';

const P = 3;
let tmp: ReturnType<typeof tempDir>;
let stores: ReplicaStore[];

beforeEach(() => {
  tmp = tempDir();
  stores = [0, 1].map((i) => ReplicaStore.open(join(tmp.dir, `r${i}.db`), { partitions: P }));
});
afterEach(() => {
  for (const s of stores) s.close();
  tmp.cleanup();
});

/** Keys that land on partitions 0, 1 and 2. */
const keyOn = (p: number, n = 0) => {
  for (let i = 0, found = 0; ; i++) if (partitionOf(`k${i}`, P) === p && found++ === n) return `k${i}`;
};

/** A simulated log: per partition, records appended in order. */
class Log {
  readonly parts: LogRecord[][] = Array.from({ length: P }, () => []);
  append(partition: number, key: string, value: Buffer, ts = 1000): number {
    const offset = this.parts[partition]!.length;
    this.parts[partition]!.push({ offset, timestamp: ts, key: encodeKey(key), value });
    return offset;
  }
  put(key: string, value: unknown): number {
    const p = partitionOf(key, P);
    const r = rec(0, 1000, key, put(value));
    return this.append(p, key, r.value!);
  }
  /** Appends every part of a batch; `order` says in which partition order the parts land. */
  batch(tx: string, ops: BatchOpInput[], order?: number[]): Array<{ partition: number; offset: number }> {
    const parts = batchParts(tx, ops, P);
    const seq = order ?? parts.map((x) => x.partition);
    return seq.map((p) => {
      const part = parts.find((x) => x.partition === p)!;
      return { partition: p, offset: this.append(p, part.key, encodePart(part)) };
    });
  }
}

/** Feeds a replica the log through the sequencer, `chunk` records per fetch, partitions in `order`. */
function replay(store: ReplicaStore, log: Log, chunk: number, order: number[]): void {
  const seq = new TxSequencer<LogRecord>(
    P,
    (r) => txTagOf(r.value),
    (tx) => store.batchOutcome(tx) !== undefined,
  );
  seq.reset(store.appliedOffsets());
  const fed = [0, 0, 0];
  while (fed.some((f, p) => f < log.parts[p]!.length)) {
    for (const p of order) {
      const end = Math.min(log.parts[p]!.length, fed[p]! + chunk);
      seq.push(p, log.parts[p]!.slice(fed[p]!, end), end);
      fed[p] = end;
      store.applySteps(seq.drain() as Array<Step<LogRecord>>);
    }
  }
}

/** Batches T1 and T2, both setting a key on partition 0 and one on 1, landed T2 first on 0 and T1 first on 1. */
function crossingBatches(): { log: Log; a: string; b: string } {
  const log = new Log();
  const [a, b] = [keyOn(0), keyOn(1)];
  const ops = (v: string): BatchOpInput[] => [
    { op: 'put', key: a, value: v },
    { op: 'put', key: b, value: v },
  ];
  const t2 = batchParts('T2', ops('two'), P);
  const t1 = batchParts('T1', ops('one'), P);
  log.append(0, t2[0]!.key, encodePart(t2[0]!));
  log.append(1, t1[1]!.key, encodePart(t1[1]!));
  log.append(0, t1[0]!.key, encodePart(t1[0]!));
  log.append(1, t2[1]!.key, encodePart(t2[1]!));
  return { log, a, b };
}

const value = (s: ReplicaStore, k: string) => {
  const e = s.get(k);
  return e === undefined ? undefined : JSON.parse(e.value);
};

describe('atomic batches in the store', () => {
  it('applies every op of a batch across partitions at once, with one verdict per part', () => {
    const log = new Log();
    const [a, b, c] = [keyOn(0), keyOn(1), keyOn(2)];
    log.put(a, 'old');
    const parts = log.batch('T1', [
      { op: 'put', key: a, value: 1 },
      { op: 'put', key: b, value: 2 },
      { op: 'del', key: c },
    ]);
    replay(stores[0]!, log, 1, [0, 1, 2]);
    const s = stores[0]!;
    expect([value(s, a), value(s, b), value(s, c)]).toEqual([1, 2, undefined]);
    expect(s.batchOutcome('T1')).toEqual({ tx: 'T1', status: 'applied', reason: null, op: null });
    for (const p of parts) expect(s.writeOutcome(p.partition, p.offset)?.status).toBe('applied');
    expect(s.get(b)?.version).toBe(`${parts[1]!.partition}-${parts[1]!.offset}`);
    expect(s.appliedOffsets()).toEqual(
      new Map([
        [0, 2],
        [1, 1],
        [2, 1],
      ]),
    );
  });

  it('is never half visible: while one part is missing, no op of the batch is applied', () => {
    const s = stores[0]!;
    const [a, b] = [keyOn(0), keyOn(1)];
    const parts = batchParts(
      'T',
      [
        { op: 'put', key: a, value: 'A' },
        { op: 'put', key: b, value: 'B' },
      ],
      P,
    );
    const seq = new TxSequencer<LogRecord>(P, (r) => txTagOf(r.value));
    seq.reset(s.appliedOffsets());
    const mk = (i: number): LogRecord => ({
      offset: 0,
      timestamp: 5,
      key: encodeKey(parts[i]!.key),
      value: encodePart(parts[i]!),
    });
    seq.push(0, [mk(0)], 1);
    s.applySteps(seq.drain() as Array<Step<LogRecord>>);
    expect([value(s, a), value(s, b)]).toEqual([undefined, undefined]);
    seq.push(1, [mk(1)], 1);
    s.applySteps(seq.drain() as Array<Step<LogRecord>>);
    expect([value(s, a), value(s, b)]).toEqual(['A', 'B']);
  });

  it('one failing condition applies nothing, on every replica, and names the op', () => {
    const log = new Log();
    const [a, b] = [keyOn(0), keyOn(1)];
    log.put(b, 'exists');
    log.batch('T', [
      { op: 'put', key: a, value: 1 },
      { op: 'put', key: b, value: 2, ifNoneMatch: true },
    ]);
    replay(stores[0]!, log, 1, [0, 1, 2]);
    replay(stores[1]!, log, 5, [2, 1, 0]);
    for (const s of stores) {
      expect(value(s, a)).toBeUndefined();
      expect(value(s, b)).toBe('exists');
      expect(s.batchOutcome('T')).toEqual({ tx: 'T', status: 'rejected', reason: 'already_exists', op: 1 });
    }
    expect(stores[0]!.digests()).toEqual(stores[1]!.digests());
  });

  it('two batches in a wait-for cycle: both replicas reject the same one and converge', () => {
    const { log, a, b } = crossingBatches();
    log.put(keyOn(0, 1), 'after');
    replay(stores[0]!, log, 1, [0, 1, 2]);
    replay(stores[1]!, log, 2, [1, 0, 2]);
    for (const s of stores) {
      expect([value(s, a), value(s, b)]).toEqual(['two', 'two']);
      expect(s.batchOutcome('T1')?.reason).toBe('batch_conflict');
      expect(s.batchOutcome('T2')?.status).toBe('applied');
      expect(value(s, keyOn(0, 1))).toBe('after');
    }
    expect(stores[0]!.dumpState()).toEqual(stores[1]!.dumpState());
    const dump = stores[0]!.dumpState();
    const re = recomputeDigests(dump);
    for (const p of dump.partitions) expect(p.digest).toBe(re.get(p.partition));
  });

  it('a replica restarted between the rejected parts of a conflict batch rejects the rest too', () => {
    const { log } = crossingBatches();
    // Replica 0 sees the whole log once; replica 1 stops after T1's first rejected part and restarts.
    replay(stores[0]!, log, 10, [0, 1, 2]);
    const s1 = stores[1]!;
    const seq = new TxSequencer<LogRecord>(
      P,
      (r) => txTagOf(r.value),
      (tx) => s1.batchOutcome(tx) !== undefined,
    );
    seq.reset(s1.appliedOffsets());
    seq.push(0, log.parts[0]!, 2);
    seq.push(1, log.parts[1]!, 2);
    const steps = seq.drain() as Array<Step<LogRecord>>;
    expect(steps[0]).toMatchObject({ kind: 'conflict', tx: 'T1', partition: 1 });
    s1.applySteps([steps[0]!]); // crash after the first step
    replay(s1, log, 1, [0, 1, 2]); // a new sequencer from the stored offsets
    expect(s1.dumpState()).toEqual(stores[0]!.dumpState());
  });
});
