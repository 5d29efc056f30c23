import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { linearizable } from '../../../src/chaos/checkers/linearizable.js';
import type { HistoryOp, ReadOp, WriteOp } from '../../../src/chaos/history.js';
import { hist, r, w } from './checker-fixtures.js';

const read = (value: number | null, invokeAt: number, completeAt: number, p: Partial<ReadOp> = {}) =>
  r({ value, invokeAt, completeAt, ...p });
const write = (value: number | null, invokeAt: number, completeAt: number, p: Partial<WriteOp> = {}) =>
  w({ value, invokeAt, completeAt, ...p });

describe('linearizable', () => {
  it('passes a sequential history and skips keys without strong reads', () => {
    const ops = [
      read(null, 0, 1),
      write(1, 2, 3, { version: '0-0' }),
      read(1, 4, 5),
      write(null, 6, 7, { version: '0-1' }),
      read(null, 8, 9),
      write(5, 0, 9, { key: 'other' }),
      read(4, 0, 9, { key: 'other', consistency: 'eventual' }),
    ];
    const res = linearizable(hist(ops));
    expect(res).toMatchObject({
      name: 'linearizable',
      valid: true,
      stats: { keys: 1, keysValid: 1, strongReads: 3 },
    });
  });

  it('flags a stale strong read after a completed write', () => {
    const stale = read(1, 40, 50);
    const ops = [write(1, 0, 10, { version: '0-0' }), write(2, 20, 30, { version: '0-1' }), stale];
    const res = linearizable(hist(ops));
    expect(res.valid).toBe(false);
    expect(res.stats.keysInvalid).toBe(1);
    expect(res.errors[0]).toMatch(new RegExp(`key k: not linearizable: read #${stale.id} → 1`));
  });

  it('finds the non-obvious order of concurrent writes', () => {
    // a is invoked first and spans everything, b completes first: only b-then-a explains the reads.
    const a = write(1, 0, 100);
    const b = write(2, 10, 20);
    const ops = [a, b, read(2, 12, 25), read(1, 30, 40), read(1, 110, 120)];
    expect(linearizable(hist(ops)).valid).toBe(true);
    // The log order agreeing with it is fine; the opposite log order makes the same reads impossible.
    const agree = [write(1, 0, 100, { version: '0-1' }), write(2, 10, 20, { version: '0-0' })];
    expect(linearizable(hist([...agree, read(1, 30, 40)])).valid).toBe(true);
    const oppose = [write(1, 0, 100, { version: '0-0' }), write(2, 10, 20, { version: '0-1' })];
    expect(linearizable(hist([...oppose, read(1, 30, 40)])).valid).toBe(false);
  });

  it('flags two reads that disagree on the order of concurrent writes', () => {
    const ops = [write(1, 0, 50), write(2, 0, 50), read(1, 10, 20), read(2, 21, 30), read(1, 31, 40)];
    // With fewer writes the search finishes and says so.
    const few: HistoryOp[] = [...ops.slice(0, 6), ...ops.slice(14)];
    expect(linearizable(hist(few))).toMatchObject({ valid: false, stats: { keysInvalid: 1 } });
  });

  it('lets a write of unknown outcome take effect late or never', () => {
    const base = [write(1, 0, 10, { version: '0-0' })];
    const unk = write(3, 20, 25, { outcome: 'unknown', code: 'client_timeout' });
    // Never seen: it may never have happened.
    expect(linearizable(hist([...base, unk, read(1, 30, 40), read(1, 200, 210)])).valid).toBe(true);
    // Seen long after the client gave up: it took effect late.
    expect(linearizable(hist([...base, unk, read(1, 30, 40), read(3, 200, 210)])).valid).toBe(true);
    // Once seen, it cannot be un-done.
    expect(linearizable(hist([...base, unk, read(3, 30, 40), read(1, 200, 210)])).valid).toBe(false);
    // An unknown delete may explain a 404 at any later time.
    const del = write(null, 20, 25, { outcome: 'unknown' });
    expect(linearizable(hist([...base, del, read(1, 30, 40), read(null, 200, 210)])).valid).toBe(true);
  });

  it('never lets a failed write take effect', () => {
    const failed = write(2, 10, 20, { outcome: 'fail', status: 503 });
    expect(linearizable(hist([write(1, 0, 5), failed, read(2, 30, 40)])).valid).toBe(false);
  });

  it('gives up with unknown past its search budget', () => {
    // Many concurrent unordered writes and reads flip-flopping between two of them: no order works,
    // but only an exhaustive search can tell.
    const ops: HistoryOp[] = Array.from({ length: 14 }, (_, i) => write(i + 1, 0, 100));
    ops.push(read(1, 50, 60), read(2, 61, 70), read(1, 71, 80));
    const res = linearizable(hist(ops), { linearizableMaxSteps: 500 });
    expect(res.valid).toBe('unknown');
    expect(res.errors[0]).toMatch(/search gave up/);
    // With fewer writes the search finishes and says so.
    const few: HistoryOp[] = [...ops.slice(0, 6), ...ops.slice(14)];
    expect(linearizable(hist(few))).toMatchObject({ valid: false, stats: { keysInvalid: 1 } });
  });

  it('names reads no order can explain without searching', () => {
    const ops = [write(1, 0, 10, { version: '0-0' }), write(2, 20, 30, { version: '0-1' })];
    const cases: Array<[ReadOp, RegExp]> = [
      [read(1, 40, 50), /later in the log than write #\d+\) completed before the read began/],
      [read(7, 40, 50), /no write \(that did not fail\) wrote that value/],
      [read(null, 40, 50), /no later delete exists/],
      [read(3, 40, 50), /began only after the read ended/],
    ];
    for (const [bad, why] of cases) {
      const late = write(3, 60, 70, { version: '0-2' });
      const res = linearizable(hist([...ops, late, bad]));
      expect(res.valid).toBe(false);
      expect(res.stats.steps).toBe(0);
      expect(res.errors[0]).toMatch(why);
      // The search alone reaches the same verdict.
      expect(linearizable(hist([...ops, late, bad]), { linearizableQuickCheck: false }).valid).toBe(false);
    }
  });

  it('infers where an unknown write sits in the log from a read that saw its value', () => {
    const unk = write(2, 20, 30, { outcome: 'unknown' });
    const ops = [write(1, 0, 10, { version: '0-0' }), unk, write(3, 40, 50, { version: '0-2' })];
    // A read saw the unknown write at 0-1, so it precedes write 3: reading it after write 3 completed is stale.
    const seen = read(2, 31, 35, { version: '0-1', consistency: 'eventual' });
    expect(linearizable(hist([...ops, seen, read(2, 60, 70)])).valid).toBe(false);
    expect(linearizable(hist([...ops, read(2, 60, 70)])).valid).toBe(true);
  });

  it('is unknown when there is no strong read at all', () => {
    expect(linearizable(hist([write(1, 0, 1)])).valid).toBe('unknown');
  });
});

/** How a generated op behaves in the sequential register. */
type Kind = 'read' | 'put' | 'del' | 'unknown-applied' | 'unknown-lost' | 'fail';
interface Spec {
  kind: Kind;
  key: 'a' | 'b';
  process: number;
  pre: number;
  post: number;
}

const specArb = fc.record({
  kind: fc.constantFrom<Kind>(
    'read',
    'read',
    'read',
    'put',
    'put',
    'del',
    'unknown-applied',
    'unknown-lost',
    'fail',
  ),
  key: fc.constantFrom<'a' | 'b'>('a', 'b'),
  process: fc.integer({ min: 0, max: 3 }),
  pre: fc.integer({ min: 0, max: 35 }),
  post: fc.integer({ min: 0, max: 35 }),
});

/**
 * Runs the specs against an in-memory register, op i taking effect at time 10·(i+1), inside its
 * interval [t - pre, t + post]: by construction the history is linearizable.
 */
function sequentialHistory(specs: Spec[]): HistoryOp[] {
  const state = new Map<string, { value: number | null; version?: string }>();
  const offsets = new Map<string, number>();
  const ops: HistoryOp[] = [];
  specs.forEach((s, i) => {
    const t = 10 * (i + 1);
    const base = { process: s.process, key: s.key, invokeAt: t - s.pre, completeAt: t + s.post };
    const partition = s.key === 'a' ? 0 : 1;
    const cur = state.get(s.key) ?? { value: null };
    if (s.kind === 'read') {
      ops.push(r({ ...base, partition, value: cur.value, ...(cur.version ? { version: cur.version } : {}) }));
      return;
    }
    const value = s.kind === 'del' ? null : i + 1;
    if (s.kind === 'fail' || s.kind === 'unknown-lost') {
      const outcome = s.kind === 'fail' ? 'fail' : 'unknown';
      ops.push(
        w({ ...base, value, outcome, completeAt: outcome === 'unknown' ? undefined : base.completeAt }),
      );
      return;
    }
    const offset = offsets.get(s.key) ?? 0;
    offsets.set(s.key, offset + 1);
    const version = `${partition}-${offset}`;
    state.set(s.key, { value, version });
    if (s.kind === 'unknown-applied')
      ops.push(w({ ...base, value, outcome: 'unknown', completeAt: undefined }));
    else ops.push(w({ ...base, value, version }));
  });
  return ops;
}

/** Makes one strong read return a put's value that a later, already completed write overwrote. */
function injectStaleRead(ops: HistoryOp[], pick: number): HistoryOp[] {
  const acked = ops.filter((o): o is WriteOp => o.kind === 'write' && o.outcome === 'ok');
  const candidates: Array<{ read: ReadOp; value: number }> = [];
  for (const op of ops) {
    if (op.kind !== 'read') continue;
    for (const old of acked) {
      if (old.key !== op.key || old.value === null || old.value === op.value) continue;
      const overwritten = acked.some(
        (n) => n.key === op.key && n.id > old.id && (n.completeAt as number) < op.invokeAt,
      );
      if (overwritten) candidates.push({ read: op, value: old.value });
    }
  }
  const c = candidates[pick % Math.max(1, candidates.length)];
  if (c) return ops.map((o) => (o === c.read ? { ...c.read, value: c.value, version: undefined } : o));
  // Nothing to corrupt in place: append put X, put Y, read X after everything else.
  const end = Math.max(...ops.map((o) => o.completeAt ?? o.invokeAt), 0) + 100;
  return [
    ...ops,
    w({ key: 'a', value: 10_001, version: '0-100', invokeAt: end, completeAt: end + 1 }),
    w({ key: 'a', value: 10_002, version: '0-101', invokeAt: end + 2, completeAt: end + 3 }),
    r({ key: 'a', value: 10_001, invokeAt: end + 4, completeAt: end + 5 }),
  ];
}

describe('linearizable (search size)', () => {
  it('decides a long history with wide overlaps within a small budget', () => {
    // 600 ops on one key, each interval ±300 ms around its point 10 ms apart: ~60 ops overlap at any time.
    const kinds: Kind[] = [
      'read',
      'put',
      'read',
      'del',
      'read',
      'put',
      'unknown-applied',
      'read',
      'unknown-lost',
    ];
    const specs = Array.from({ length: 600 }, (_, i): Spec => {
      const kind = kinds[i % kinds.length] as Kind;
      return { kind, key: 'a', process: i % 8, pre: (i * 37) % 300, post: (i * 53) % 300 };
    });
    const h = hist(sequentialHistory(specs));
    const res = linearizable(h, { linearizableQuickCheck: false, linearizableMaxSteps: 50_000 });
    expect(res).toMatchObject({ valid: true, stats: { keysValid: 1 } });
  });
});

describe('linearizable (property)', () => {
  it('accepts every history of a sequential register observed with overlapping intervals', () => {
    fc.assert(
      fc.property(fc.array(specArb, { minLength: 1, maxLength: 30 }), (specs) => {
        const h = hist(sequentialHistory(specs));
        for (const quick of [true, false]) {
          const res = linearizable(h, { linearizableQuickCheck: quick });
          expect(res.valid === true || (res.valid === 'unknown' && res.stats.keys === 0)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('flags the same histories with one injected stale read', () => {
    fc.assert(
      fc.property(fc.array(specArb, { minLength: 1, maxLength: 30 }), fc.nat(), (specs, pick) => {
        const h = hist(injectStaleRead(sequentialHistory(specs), pick));
        expect(linearizable(h).valid).toBe(false);
        expect(linearizable(h, { linearizableQuickCheck: false }).valid).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
