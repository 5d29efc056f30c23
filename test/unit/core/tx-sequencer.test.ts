import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type SeqRecord,
  type Step,
  stronglyConnected,
  TxSequencer,
  type TxTag,
} from '../../../src/core/tx-sequencer.js';

// Test records carry their meaning in the key: "w:<name>" a plain write, "t:<tx>:<p,q,...>" a batch part.
function rec(offset: number, what: string): SeqRecord {
  return { offset, timestamp: offset, key: Buffer.from(what), value: null };
}
function tagOf(r: SeqRecord): TxTag | undefined {
  const s = r.key!.toString();
  if (!s.startsWith('t:')) return undefined;
  const [, tx, parts] = s.split(':');
  return { tx: tx!, parts: parts!.split(',').map(Number) };
}
const label = (r: SeqRecord) => r.key!.toString();

/** What the steps do, as one line per step. */
function describeSteps(steps: Step[]): string[] {
  return steps.map((s) =>
    s.kind === 'records'
      ? `p${s.partition} [${s.records.map(label).join(' ')}] ->${s.through}`
      : s.kind === 'batch'
        ? `batch ${s.tx} ${s.parts.map((x) => `p${x.partition}@${x.record.offset}`).join(' ')}`
        : `conflict ${s.tx} p${s.partition}@${s.record.offset}`,
  );
}

describe('TxSequencer', () => {
  it('passes plain records through and moves past filtered offsets (transaction markers)', () => {
    const seq = new TxSequencer(2, tagOf);
    seq.push(0, [rec(0, 'w:a'), rec(1, 'w:b')], 3); // offset 2 was a commit marker
    expect(describeSteps(seq.drain())).toEqual(['p0 [w:a w:b] ->3']);
    seq.push(1, [], 1); // a fetch of nothing but a marker
    expect(describeSteps(seq.drain())).toEqual(['p1 [] ->1']);
    expect(seq.drain()).toEqual([]);
  });

  it('holds a partition at a batch part until every part is at the head of its partition', () => {
    const seq = new TxSequencer(2, tagOf);
    seq.push(0, [rec(0, 'w:a'), rec(1, 't:T:0,1'), rec(2, 'w:after')], 3);
    expect(describeSteps(seq.drain())).toEqual(['p0 [w:a] ->1']);
    seq.push(1, [rec(0, 'w:x'), rec(1, 'w:y')], 2);
    expect(describeSteps(seq.drain())).toEqual(['p1 [w:x w:y] ->2']);
    seq.push(1, [rec(2, 't:T:0,1'), rec(3, 'w:z')], 5);
    expect(describeSteps(seq.drain())).toEqual(['batch T p0@1 p1@2', 'p0 [w:after] ->3', 'p1 [w:z] ->5']);
  });

  it('drops redelivered records and restarts from the applied offsets after a reset', () => {
    const seq = new TxSequencer(1, tagOf);
    seq.push(0, [rec(0, 'w:a'), rec(1, 'w:b')], 2);
    seq.drain();
    seq.push(0, [rec(1, 'w:b'), rec(2, 'w:c')], 3);
    expect(describeSteps(seq.drain())).toEqual(['p0 [w:c] ->3']);
    seq.reset(new Map([[0, 2]]));
    seq.push(0, [rec(0, 'w:a'), rec(1, 'w:b'), rec(2, 'w:c')], 3);
    expect(describeSteps(seq.drain())).toEqual(['p0 [w:c] ->3']);
  });

  it('rejects the smallest batch of a wait-for cycle, and only once every part of it is known', () => {
    const seq = new TxSequencer(2, tagOf);
    // T2 before T1 on partition 0; T1 before T2 on partition 1.
    seq.push(0, [rec(0, 't:T2:0,1'), rec(1, 't:T1:0,1')], 2);
    seq.push(1, [rec(0, 't:T1:0,1')], 1);
    // T2's part on partition 1 is not fetched yet: no cycle can be claimed.
    expect(seq.drain()).toEqual([]);
    seq.push(1, [rec(1, 't:T2:0,1')], 2);
    expect(describeSteps(seq.drain())).toEqual([
      'conflict T1 p1@0',
      'batch T2 p0@0 p1@1',
      'conflict T1 p0@1',
    ]);
  });

  it('a part of a batch this replica already rejected (before a restart) is rejected again', () => {
    const decided = new Set(['T1']);
    const seq = new TxSequencer(2, tagOf, (tx) => decided.has(tx));
    seq.reset(
      new Map([
        [0, 2],
        [1, 0],
      ]),
    );
    // T1's part on partition 0 lies below its applied offset: only a rejected batch can be half applied.
    seq.push(1, [rec(0, 't:T1:0,1'), rec(1, 'w:x')], 2);
    expect(describeSteps(seq.drain())).toEqual(['conflict T1 p1@0', 'p1 [w:x] ->2']);
  });

  it('a part that does not list its own partition is a plain record (rejected as invalid by the store)', () => {
    const seq = new TxSequencer(2, tagOf);
    seq.push(0, [rec(0, 't:T:1'), rec(1, 't:U:0,7')], 2);
    expect(describeSteps(seq.drain())).toEqual(['p0 [t:T:1 t:U:0,7] ->2']);
  });

  it('reaches the same outcome whatever the fetch sizes and the order partitions are fetched in', () => {
    // A random log: plain writes and batches (committed: every part lands, in a random interleaving).
    const logArb = fc
      .record({
        partitions: fc.integer({ min: 1, max: 4 }),
        events: fc.array(
          fc.record({ batch: fc.boolean(), mask: fc.integer({ min: 1, max: 15 }), p: fc.nat(3) }),
          { maxLength: 30 },
        ),
        order: fc.array(fc.nat(), { maxLength: 200 }),
      })
      .map(({ partitions, events, order }) => {
        const logs: string[][] = Array.from({ length: partitions }, () => []);
        const pending: Array<{ p: number; what: string }> = [];
        events.forEach((e, i) => {
          if (!e.batch) pending.push({ p: e.p % partitions, what: `w:${i}` });
          else {
            const parts = [
              ...new Set([0, 1, 2, 3].filter((b) => e.mask & (1 << b)).map((b) => b % partitions)),
            ].sort();
            for (const p of parts)
              pending.push({ p, what: `t:B${String(i).padStart(2, '0')}:${parts.join(',')}` });
          }
        });
        // Interleave: appends of different events may land in any order (as concurrent producers' do).
        let k = 0;
        while (pending.length > 0) {
          const next = pending.splice((order[k++] ?? 0) % pending.length, 1)[0]!;
          logs[next.p]!.push(next.what);
        }
        return logs;
      });
    const run = (logs: string[][], chunk: number, rotate: number) => {
      const seq = new TxSequencer(logs.length, tagOf);
      const fed = logs.map(() => 0);
      const effects: string[] = [];
      const record = (steps: Step[]) => {
        for (const s of steps) {
          if (s.kind === 'records') for (const r of s.records) effects.push(`p${s.partition}:${label(r)}`);
          else if (s.kind === 'batch')
            for (const x of s.parts) effects.push(`p${x.partition}:${s.tx}:applied`);
          else effects.push(`p${s.partition}:${s.tx}:rejected`);
        }
      };
      for (let round = 0; fed.some((f, p) => f < logs[p]!.length); round++) {
        const p = (round + rotate) % logs.length;
        const log = logs[p]!;
        const end = Math.min(log.length, fed[p]! + chunk);
        seq.push(
          p,
          log.slice(fed[p]!, end).map((w, i) => rec(fed[p]! + i, w)),
          end,
        );
        fed[p] = end;
        record(seq.drain());
      }
      record(seq.drain());
      // Per partition, the order of effects must be the log order; across partitions only the batch verdicts and
      // each partition's sequence count (interleaving between partitions is free).
      const perPartition = logs.map((_, p) => effects.filter((e) => e.startsWith(`p${p}:`)).join(' '));
      const verdicts = [
        ...new Set(effects.filter((e) => !e.includes(':w:')).map((e) => e.slice(e.indexOf(':') + 1))),
      ].sort();
      const held = logs.map((_, p) => seq.queued(p));
      return { perPartition, verdicts, held };
    };
    let conflicts = 0;
    fc.assert(
      fc.property(logArb, fc.integer({ min: 1, max: 5 }), fc.nat(3), (logs, chunk, rotate) => {
        const a = run(logs, 1, 0);
        conflicts += a.verdicts.filter((v) => v.endsWith(':rejected')).length;
        const b = run(logs, chunk, rotate);
        expect(b).toEqual(a);
        // Every committed batch is decided in the end: nothing is held forever.
        expect(a.held.every((n) => n === 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
    // The generator does make cycles (else this would prove nothing about them).
    expect(conflicts).toBeGreaterThan(0);
  });
});

describe('stronglyConnected', () => {
  it('finds cycles and singletons', () => {
    const c = stronglyConnected(
      new Map([
        [0, [1]],
        [1, [0, 2]],
        [2, []],
        [3, [2]],
      ]),
    );
    expect(c.map((x) => x.join(',')).sort()).toEqual(['0,1', '2', '3']);
  });
});
