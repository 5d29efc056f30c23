import { describe, expect, it } from 'vitest';
import { convergence } from '../../../src/chaos/checkers/convergence.js';
import { monotonicReads } from '../../../src/chaos/checkers/monotonic-reads.js';
import { sessionReads } from '../../../src/chaos/checkers/session-reads.js';
import { fin, hist, r, w } from './checker-fixtures.js';

describe('convergence', () => {
  const node = (name: string, d1: string, applied1 = 7, end1 = 7) =>
    fin(name, {
      digests: [
        { partition: 0, appliedOffset: 12, digest: 'aa' },
        { partition: 1, appliedOffset: applied1, digest: d1 },
      ],
      endOffsets: { 0: 12, 1: end1 },
    });

  it('passes when all nodes are caught up with equal digests', () => {
    const res = convergence(hist([], { partitions: 2, finals: [node('n1', 'bb'), node('n2', 'bb')] }));
    expect(res).toMatchObject({ valid: true, stats: { nodes: 2, partitions: 2, lagging: 0, diverging: 0 } });
  });

  it('flags diverging digests at equal offsets, naming the partition', () => {
    const res = convergence(hist([], { partitions: 2, finals: [node('n1', 'bb'), node('n2', 'cc')] }));
    expect(res.valid).toBe(false);
    expect(res.stats.diverging).toBe(1);
    expect(res.errors).toEqual([expect.stringMatching(/^partition 1: digests differ: n1@7=bb, n2@7=cc/)]);
  });

  it('flags a node that has not applied up to the log end, even if it saw an older end', () => {
    const res = convergence(hist([], { partitions: 2, finals: [node('n1', 'bb'), node('n2', 'xx', 5, 5)] }));
    expect(res.valid).toBe(false);
    expect(res.stats).toMatchObject({ lagging: 1, diverging: 0 });
    expect(res.errors[0]).toMatch(/partition 1: log end 7, but n2 applied 5/);
  });

  it('flags a missing partition report and is unknown without finals', () => {
    const partial = fin('n2', {
      digests: [{ partition: 0, appliedOffset: 12, digest: 'aa' }],
      endOffsets: { 0: 12 },
    });
    expect(convergence(hist([], { partitions: 2, finals: [node('n1', 'bb'), partial] })).valid).toBe(false);
    expect(convergence(hist([], { partitions: 2 })).valid).toBe('unknown');
  });
});

describe('session-reads', () => {
  const put = w({ value: 5, version: '0-5' });
  const session = (p: Parameters<typeof r>[0]) =>
    r({ consistency: 'session', invokeAt: 10, completeAt: 11, ...p });

  it('passes when the read reflects every write below its token', () => {
    const reads = [
      session({ sessionIn: { 0: 6 }, value: 5, version: '0-5' }),
      session({ sessionIn: { 0: 6 }, value: 8, version: '0-8' }),
      // The token does not cover offset 5 yet: an older version is allowed.
      session({ sessionIn: { 0: 5 }, value: 3, version: '0-3' }),
      // A token for another partition says nothing about this key.
      session({ sessionIn: { 1: 99 }, value: 3, version: '0-3' }),
    ];
    const res = sessionReads(hist([w({ value: 3, version: '0-3' }), put, ...reads]));
    expect(res).toMatchObject({ valid: true, stats: { sessionReads: 3 } });
  });

  it('flags a session read older than its token', () => {
    const stale = session({ sessionIn: { 0: 6 }, value: 3, version: '0-3' });
    const res = sessionReads(hist([w({ value: 3, version: '0-3' }), put, stale]));
    expect(res.valid).toBe(false);
    expect(res.errors[0]).toContain(`session read #${stale.id}`);
    expect(res.errors[0]).toContain(`write #${put.id} at 0-5`);
  });

  it('counts a write of unknown outcome only when something saw it', () => {
    const unk = w({ value: 6, version: '0-6', outcome: 'unknown', status: 202, code: 'pending' });
    const old = session({ sessionIn: { 0: 7 }, value: 5, version: '0-5' });
    expect(sessionReads(hist([put, unk, old])).valid).toBe(true);
    const seen = r({ consistency: 'eventual', value: 6, version: '0-6' });
    expect(sessionReads(hist([put, unk, seen, old])).valid).toBe(false);
  });

  it('treats a 404 as offset -1, excused by a delete', () => {
    const miss = session({ sessionIn: { 0: 6 }, value: null });
    expect(sessionReads(hist([put, miss])).valid).toBe(false);
    const del = w({ value: null, version: '0-4' });
    const delAfter = w({ value: null, version: '0-6' });
    expect(sessionReads(hist([del, put, miss])).valid).toBe(false);
    const miss7 = session({ sessionIn: { 0: 7 }, value: null });
    expect(sessionReads(hist([put, delAfter, miss7])).valid).toBe(true);
    const unknownDel = w({ value: null, outcome: 'unknown' });
    expect(sessionReads(hist([put, unknownDel, miss])).valid).toBe(true);
  });

  it('excuses a 404 by a delete above the token that the read had already seen', () => {
    // Seen in a chaos run: token 0:6, the replica had applied up to 9 and a delete at 0-8 was among it.
    const delLater = w({ value: null, version: '0-8' });
    const sawDelete = session({ sessionIn: { 0: 6 }, sessionOut: { 0: 9 }, value: null });
    expect(sessionReads(hist([put, delLater, sawDelete])).valid).toBe(true);
    // But not a delete the read cannot have seen (beyond the token it got back).
    const tooEarly = session({ sessionIn: { 0: 6 }, sessionOut: { 0: 7 }, value: null });
    expect(sessionReads(hist([put, delLater, tooEarly])).valid).toBe(false);
  });

  it('ignores reads at other levels and failed reads', () => {
    const eventual = r({ consistency: 'eventual', sessionIn: { 0: 6 }, value: null });
    const timedOut = session({ sessionIn: { 0: 6 }, outcome: 'fail', status: 504 });
    expect(sessionReads(hist([put, eventual, timedOut]))).toMatchObject({
      valid: true,
      stats: { sessionReads: 0 },
    });
  });
});

describe('monotonic-reads', () => {
  const at = (t: number, p: Parameters<typeof r>[0]) =>
    r({ consistency: 'session', invokeAt: t, completeAt: t + 1, ...p });

  it('passes when each process sees non-decreasing versions', () => {
    const ops = [
      at(0, { value: 1, version: '0-1' }),
      at(2, { value: 1, version: '0-1', consistency: 'strong' }),
      at(4, { value: 3, version: '0-3' }),
      // Another process may be behind.
      at(5, { process: 1, value: 1, version: '0-1' }),
      // Eventual reads are not held to it.
      at(6, { value: 0, version: '0-0', consistency: 'eventual' }),
    ];
    expect(monotonicReads(hist(ops))).toMatchObject({ valid: true, stats: { reads: 4, sequences: 2 } });
  });

  it('flags a read going back in time, whatever the record order', () => {
    const late = at(4, { value: 1, version: '0-1', node: 'n2' });
    const early = at(0, { value: 3, version: '0-3' });
    const res = monotonicReads(hist([late, early]));
    expect(res.valid).toBe(false);
    expect(res.errors[0]).toContain(
      `read #${late.id} (session, node n2) saw 0-1 after read #${early.id} saw 0-3`,
    );
  });

  it('flags a 404 after a seen version unless a later delete may exist', () => {
    const seen = at(0, { value: 3, version: '0-3' });
    const miss = at(2, { value: null });
    expect(monotonicReads(hist([seen, miss])).valid).toBe(false);
    expect(monotonicReads(hist([seen, miss, w({ value: null, version: '0-2' })])).valid).toBe(false);
    expect(monotonicReads(hist([seen, miss, w({ value: null, version: '0-4' })])).valid).toBe(true);
    expect(monotonicReads(hist([at(0, { value: null }), at(2, { value: 3, version: '0-3' })])).valid).toBe(
      true,
    );
  });
});
