import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BOOKKEEPING_RETENTION_MS,
  decide,
  type Entry,
  IDEM_WINDOW_MS,
  WID_WINDOW_MS,
} from '../../../src/core/decide.js';
import { decodeRecord, requestFingerprint, type WriteOp } from '../../../src/core/record.js';
import { parseVersion } from '../../../src/core/version.js';
import { type LogRecord, ReplicaStore } from '../../../src/store/replica-store.js';
import { rec, recomputeDigests, tempDir } from './fixtures.js';

/**
 * Convergence: replica A applies each partition's log in one batch; replica B applies the same log in random
 * batch sizes, with redelivery (rewinding to an earlier offset as Kafka does when committed offsets lag), crashes
 * inside the transaction mid-batch, and close/reopen. Both must end byte-identical, with every record applied
 * exactly once, and equal to a model built from the pure `decide` alone. The log has what real logs have:
 * second copies of records (a producer retry appended twice: same wid), idempotency keys reused for other
 * requests, producers whose clocks are seconds apart, and gaps longer than the wid and idempotency windows.
 */

const PARTITIONS = 3;
const KEYS = 4;

type GenOp =
  | { t: 'put'; key: number; value: number; cond: Cond; ttl: number | null; idem: number | null; dl: Dl }
  | { t: 'del'; key: number; cond: Cond; idem: number | null; dl: Dl }
  | { t: 'hb' }
  | { t: 'invalid'; key: number; variant: number }
  | { t: 'copy'; back: number };
/** ifMatch back-references a recent earlier record (current or stale version), or is '*' / bogus. */
type Cond =
  | { c: 'none' }
  | { c: 'ifNoneMatch' }
  | { c: 'ifMatch'; back: number }
  | { c: 'star' }
  | { c: 'bogus' };

const condArb: fc.Arbitrary<Cond> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ c: 'none' as const }) },
  { weight: 1, arbitrary: fc.constant({ c: 'ifNoneMatch' as const }) },
  { weight: 3, arbitrary: fc.nat(4).map((back) => ({ c: 'ifMatch' as const, back })) },
  { weight: 1, arbitrary: fc.constant({ c: 'star' as const }) },
  { weight: 1, arbitrary: fc.constant({ c: 'bogus' as const }) },
);
const idemArb = fc.option(fc.nat(2), { freq: 3, nil: null });
/** A strict write's deadline relative to its log time: negative = it landed late and must be dropped. */
type Dl = number | null;
const dlArb: fc.Arbitrary<Dl> = fc.option(fc.constantFrom(-5000, -1, 0, 1, 5000), { freq: 2, nil: null });
const keyArb = fc.nat(KEYS - 1);
const opArb: fc.Arbitrary<GenOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      key: keyArb,
      value: fc.integer({ min: -5, max: 5 }),
      cond: condArb,
      ttl: fc.option(fc.integer({ min: 1, max: 120 }), { freq: 3, nil: null }),
      idem: idemArb,
      dl: dlArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('del' as const),
      key: keyArb,
      cond: condArb,
      idem: idemArb,
      dl: dlArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'hb' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('invalid' as const), key: keyArb, variant: fc.nat(4) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('copy' as const), back: fc.nat(6) }) },
);
const SKEW_MS = 5000;
const stepArb = fc.record({
  op: opArb,
  gap: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 4 })),
  dt: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: -15, max: 60 }) },
    // Two producers whose clocks are 5 s apart, writing in turn.
    { weight: 2, arbitrary: fc.constantFrom(-SKEW_MS, SKEW_MS) },
    // Long quiet periods: wid and idempotency memories run out.
    { weight: 1, arbitrary: fc.constantFrom(WID_WINDOW_MS, IDEM_WINDOW_MS) },
  ),
});
const logArb = fc.array(fc.array(stepArb, { maxLength: 40 }), {
  minLength: PARTITIONS,
  maxLength: PARTITIONS,
});

type Action =
  | { a: 'apply'; p: number; size: number }
  | { a: 'rewind'; p: number; by: number }
  | { a: 'crash'; p: number; size: number; at: number; reopen: boolean }
  | { a: 'reopen'; resumeFromStore: boolean };
const pArb = fc.nat(PARTITIONS - 1);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ a: fc.constant('apply' as const), p: pArb, size: fc.integer({ min: 1, max: 8 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ a: fc.constant('rewind' as const), p: pArb, by: fc.integer({ min: 1, max: 10 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      a: fc.constant('crash' as const),
      p: pArb,
      size: fc.integer({ min: 1, max: 8 }),
      at: fc.nat(),
      reopen: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ a: fc.constant('reopen' as const), resumeFromStore: fc.boolean() }) },
);

/** Turns generated steps into Kafka records: offsets with gaps, timestamps mostly increasing. */
function buildLog(p: number, steps: Array<{ op: GenOp; gap: number; dt: number }>): LogRecord[] {
  const out: LogRecord[] = [];
  let offset = -1;
  let ts = 1_000_000;
  for (const [i, { op, gap, dt }] of steps.entries()) {
    offset += i === 0 ? 1 + (gap - 1) : gap;
    ts += dt;
    const key = (k: number) => `p${p}/k${k}`;
    const cond = (c: Cond) => {
      switch (c.c) {
        case 'none':
          return {};
        case 'ifNoneMatch':
          return { ifNoneMatch: true as const };
        case 'star':
          return { ifMatch: '*' };
        case 'bogus':
          return { ifMatch: `${p}-999999` };
        case 'ifMatch': {
          const prev = out[out.length - 1 - (c.back % Math.max(1, Math.min(out.length, 5)))];
          return { ifMatch: `${p}-${prev?.offset ?? 999999}` };
        }
      }
    };
    const idem = (n: number | null) => (n === null ? {} : { idem: `idem-${n}` });
    const dl = (d: Dl) => (d === null ? {} : { dl: ts + d });
    const wid = `w${p}-${i}`;
    switch (op.t) {
      case 'put': {
        const body: WriteOp = {
          v: 1,
          op: 'put',
          value: { n: op.value, at: offset },
          ...(op.ttl === null ? {} : { ttlMs: op.ttl }),
          ...cond(op.cond),
          ...idem(op.idem),
          wid,
          ...dl(op.dl),
        };
        out.push(rec(offset, ts, key(op.key), body));
        break;
      }
      case 'del':
        out.push(
          rec(offset, ts, key(op.key), {
            v: 1,
            op: 'del',
            ...cond(op.cond),
            ...idem(op.idem),
            wid,
            ...dl(op.dl),
          }),
        );
        break;
      case 'hb':
        out.push(rec(offset, ts, null, { v: 1, op: 'hb', node: 'gen' }));
        break;
      case 'invalid': {
        const k = Buffer.from(key(op.key));
        const variants: Array<[Buffer | null, Buffer | null]> = [
          [k, Buffer.from('{"v":1,"op":"put"')],
          [k, null],
          [Buffer.from('bad\u0001key'), Buffer.from('{"v":1,"op":"del","wid":"w"}')],
          [k, Buffer.from('{"v":2,"op":"del","wid":"w"}')],
          [k, Buffer.from('{"v":1,"op":"hb","node":"n"}')],
        ];
        const [rk, rv] = variants[op.variant % variants.length]!;
        out.push({ offset, timestamp: ts, key: rk, value: rv });
        break;
      }
      case 'copy': {
        // The same record bytes again, later in the log: what kafkajs's retry across a leader change can do.
        const orig = out[out.length - 1 - (op.back % Math.max(1, out.length))];
        if (orig === undefined) out.push(rec(offset, ts, null, { v: 1, op: 'hb', node: 'gen' }));
        else out.push({ offset, timestamp: ts, key: orig.key, value: orig.value });
        break;
      }
    }
  }
  return out;
}

/**
 * The expected kv rows and write outcomes, from `decide` alone: one pass per partition with the wid and
 * idempotency memories kept in maps (never pruned: `decide` ignores what is out of its window), purge at the
 * final log clock — of expired entries, and of verdicts older than the bookkeeping retention.
 */
function model(logs: LogRecord[][]): {
  kv: Array<Entry & { partition: number }>;
  writes: Array<{ partition: number; offset: number; status: string; reason: string | null }>;
} {
  const kv = new Map<string, Entry & { partition: number }>();
  const writes: Array<{ partition: number; offset: number; status: string; reason: string | null }> = [];
  for (const [p, log] of logs.entries()) {
    const idem = new Map<string, { version: string; fp: string; at: number }>();
    const wids = new Map<string, { version: string; at: number }>();
    const outcomes = new Map<number, { status: string; reason: string | null; at: number }>();
    const partitionWrites: Array<{
      partition: number;
      offset: number;
      status: string;
      reason: string | null;
    }> = [];
    let clock: number | null = null;
    for (const r of log) {
      clock = clock === null ? r.timestamp : Math.max(clock, r.timestamp);
      const d = decodeRecord(r.key, r.value);
      const w = d.op === 'put' || d.op === 'del' ? d : undefined;
      const ik = w?.idem !== undefined ? `${w.key}\u001f${w.idem}` : undefined;
      const key = d.op === 'hb' ? null : d.key;
      const seenWid = w === undefined ? undefined : wids.get(w.wid);
      const decision = decide(key === null ? undefined : kv.get(key), d, {
        partition: p,
        offset: r.offset,
        timestamp: clock,
        appendTime: r.timestamp,
        seenIdem: ik === undefined ? undefined : idem.get(ik),
        seenWid,
        // A copy's verdict past the retention counts as gone, whether the store pruned it yet or not.
        resolveVersion: (v) => {
          const o = outcomes.get(parseVersion(v)?.offset ?? -1);
          const kept = o !== undefined && clock! - o.at < BOOKKEEPING_RETENTION_MS;
          return kept && o.status === 'duplicate' && o.reason !== null ? o.reason : v;
        },
      });
      const version = `${p}-${r.offset}`;
      if (decision.kind === 'put') kv.set(decision.entry.key, { ...decision.entry, partition: p });
      if (decision.kind === 'delete' && key !== null) kv.delete(key);
      const outcome =
        decision.kind === 'put' || decision.kind === 'delete'
          ? { status: 'applied', reason: null }
          : decision.kind === 'reject'
            ? { status: 'rejected', reason: decision.reason as string }
            : decision.kind === 'duplicate'
              ? { status: 'duplicate', reason: decision.of }
              : undefined;
      if (outcome !== undefined) {
        outcomes.set(r.offset, { ...outcome, at: clock });
        partitionWrites.push({ partition: p, offset: r.offset, ...outcome });
      }
      const decided = ['put', 'delete', 'reject'].includes(decision.kind);
      const reused =
        decision.kind === 'reject' &&
        (decision.reason === 'idempotency_key_reused' || decision.reason === 'deadline_passed');
      if (w !== undefined && ik !== undefined && decided && !reused) {
        idem.set(ik, { version, fp: requestFingerprint(w), at: clock });
      }
      if (
        w !== undefined &&
        !(
          decision.kind === 'duplicate' &&
          seenWid !== undefined &&
          decision.of === seenWid.version &&
          clock - seenWid.at < WID_WINDOW_MS
        )
      ) {
        wids.set(w.wid, { version: decision.kind === 'duplicate' ? decision.of : version, at: clock });
      }
    }
    for (const [k, e] of kv)
      if (e.partition === p && e.expiresAt !== null && clock !== null && e.expiresAt <= clock) kv.delete(k);
    // Verdicts are kept for the retention, by the partition's final log clock.
    for (const w of partitionWrites)
      if (clock !== null && clock - outcomes.get(w.offset)!.at < BOOKKEEPING_RETENTION_MS) writes.push(w);
  }
  return {
    kv: [...kv.values()].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key))),
    writes,
  };
}

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

describe('replica convergence', () => {
  it('any batching, redelivery and crash schedule reaches the same state as one clean pass', () => {
    let run = 0;
    fc.assert(
      fc.property(logArb, fc.array(actionArb, { maxLength: 40 }), (steps, actions) => {
        run++;
        const logs = steps.map((s, p) => buildLog(p, s));
        const pathA = join(tmp.dir, `a-${run}.db`);
        const pathB = join(tmp.dir, `b-${run}.db`);
        const a = ReplicaStore.open(pathA, { partitions: PARTITIONS });
        let b = ReplicaStore.open(pathB, { partitions: PARTITIONS });
        try {
          for (const [p, log] of logs.entries()) a.applyBatch(p, log);

          const pos = logs.map(() => 0);
          const resumeFromStore = () => {
            const applied = b.appliedOffsets();
            for (const [p, log] of logs.entries()) {
              const next = log.findIndex((r) => r.offset >= applied.get(p)!);
              pos[p] = next < 0 ? log.length : next;
            }
          };
          const deliver = (p: number, size: number) => {
            const batch = logs[p]!.slice(pos[p], pos[p]! + size);
            b.applyBatch(p, batch);
            pos[p] = pos[p]! + batch.length;
          };
          for (const act of actions) {
            switch (act.a) {
              case 'apply':
                deliver(act.p, act.size);
                break;
              case 'rewind':
                pos[act.p] = Math.max(0, pos[act.p]! - act.by);
                break;
              case 'crash': {
                const batch = logs[act.p]!.slice(pos[act.p], pos[act.p]! + act.size);
                if (batch.length === 0) break;
                const before = b.dumpState();
                const crashAt = act.at % batch.length;
                let threw = false;
                try {
                  b.applyBatch(act.p, batch, {
                    afterRecord: (_o, i) => {
                      if (i === crashAt) throw new Error('simulated crash');
                    },
                  });
                } catch (e) {
                  threw = (e as Error).message === 'simulated crash';
                }
                // Either the crash hit a record that was applied (and nothing of the batch committed), or every
                // record up to it was a redelivery and the batch was a no-op anyway.
                if (threw) expect(b.dumpState()).toEqual(before);
                if (act.reopen) {
                  b.close();
                  b = ReplicaStore.open(pathB, { partitions: PARTITIONS });
                }
                resumeFromStore();
                break;
              }
              case 'reopen':
                b.close();
                b = ReplicaStore.open(pathB, { partitions: PARTITIONS });
                if (act.resumeFromStore) resumeFromStore();
                break;
            }
          }
          for (const p of logs.keys()) while (pos[p]! < logs[p]!.length) deliver(p, 3);

          const dumpA = a.dumpState();
          const dumpB = b.dumpState();
          expect(dumpB).toEqual(dumpA);
          expect(b.digests()).toEqual(a.digests());
          const expected = model(logs);
          expect(dumpA.kv).toEqual(expected.kv);
          expect(
            dumpA.writes.map(({ partition, offset, status, reason }) => ({
              partition,
              offset,
              status,
              reason,
            })),
          ).toEqual(expected.writes);
          // Reads judge expiry by the partition clock: both replicas answer every key alike, and exactly the
          // entries a conditional write at that clock would see as live.
          for (let p = 0; p < PARTITIONS; p++) {
            for (let k = 0; k < KEYS; k++) {
              const key = `p${p}/k${k}`;
              const live = expected.kv.find((e) => e.key === key);
              const { partition: _p, ...entry } = live ?? { partition: 0 };
              expect(a.get(key)).toEqual(live === undefined ? undefined : entry);
              expect(b.get(key)).toEqual(a.get(key));
            }
          }
          expect(b.scan({ prefix: '', limit: 1000 })).toEqual(a.scan({ prefix: '', limit: 1000 }));
          const recomputed = recomputeDigests(dumpA);
          for (const info of dumpA.partitions) {
            const log = logs[info.partition]!;
            expect(info.recordsApplied).toBe(log.length);
            expect(info.appliedOffset).toBe(log.length === 0 ? 0 : log[log.length - 1]!.offset + 1);
            expect(info.digest).toBe(recomputed.get(info.partition));
          }
          // Every write record has a verdict, unless it is older than the retention by its partition's clock.
          expect(dumpA.writes.length).toBe(
            logs.flatMap((log) => {
              const end = Math.max(...log.map((r) => r.timestamp));
              let clock = -Infinity;
              return log.filter((r) => {
                clock = Math.max(clock, r.timestamp);
                return decodeRecord(r.key, r.value).op !== 'hb' && end - clock < BOOKKEEPING_RETENTION_MS;
              });
            }).length,
          );
        } finally {
          a.close();
          b.close();
        }
      }),
      { numRuns: 100 },
    );
  }, 60_000);
});
