import { describe, expect, it } from 'vitest';
import {
  catchUpGap,
  type EndView,
  latchTarget,
  type ReadinessFacts,
  readiness,
} from '../../../src/core/readiness.js';

const ready: ReadinessFacts = {
  stopping: false,
  hasReplica: true,
  replicaState: 'running',
  replicaProblem: undefined,
  replicaLastError: undefined,
  topicProblem: undefined,
  catchingUp: undefined,
};

describe('readiness', () => {
  it('is ready only when running, caught up, topic safe and not stopping', () => {
    expect(readiness(ready)).toEqual({ ready: true });
    expect(readiness({ ...ready, catchingUp: 'partition 0 at 1 of 9' })).toMatchObject({
      ready: false,
      code: 'not_ready',
      reason: 'Replica is catching up: partition 0 at 1 of 9',
      retryable: true,
    });
    expect(readiness({ ...ready, replicaState: 'starting', replicaLastError: 'ECONNREFUSED' })).toMatchObject(
      {
        code: 'not_ready',
        reason: 'Replica is starting: ECONNREFUSED',
      },
    );
    expect(readiness({ ...ready, topicProblem: 'missing' })).toMatchObject({ code: 'topic_unsafe' });
  });

  it('says stopping first, then a diverged replica (permanent) before a topic problem', () => {
    const all: ReadinessFacts = {
      ...ready,
      stopping: true,
      replicaProblem: { code: 'replica_diverged', message: 'log behind store' },
      topicProblem: 'missing',
      replicaState: 'failed',
    };
    expect(readiness(all)).toMatchObject({ code: 'node_stopping', retryable: true });
    expect(readiness({ ...all, stopping: false })).toMatchObject({
      code: 'replica_diverged',
      retryable: false,
      details: { reason: 'replica_diverged' },
    });
  });

  it('an api-only node (no replica) is ready once its topic is safe', () => {
    const api = { ...ready, hasReplica: false, replicaState: 'none', catchingUp: 'x' };
    expect(readiness(api)).toEqual({ ready: true });
    expect(readiness({ ...api, topicProblem: 'unchecked' })).toMatchObject({
      ready: false,
      code: 'topic_unsafe',
    });
  });
});

describe('catchUpGap', () => {
  const ends = (offsets: number[], at: number) =>
    offsets.map((endOffset, partition) => ({ partition, endOffset, observedAt: at }));
  const gap = (
    partitions: number,
    e: ReadonlyArray<EndView | undefined>,
    applied: Map<number, number>,
    joinedAt: number,
  ) => catchUpGap(partitions, latchTarget(undefined, e, joinedAt), applied);

  it('needs a join and an end read after it for every partition', () => {
    expect(gap(2, ends([5, 5], 100), new Map(), 0)).toBe('has not joined its consumer group yet');
    // Ends read before the join may be older than what the group hands over: they do not count.
    expect(gap(2, ends([0, 0], 100), new Map(), 200)).toMatch(/2 partition\(s\) is not known/);
    expect(gap(2, [ends([0], 300)[0]], new Map(), 200)).toMatch(/1 partition\(s\) is not known/);
  });

  it('is caught up when every applied offset reached the end read after the join', () => {
    const applied = new Map([
      [0, 5],
      [1, 7],
    ]);
    expect(gap(2, ends([5, 7], 300), applied, 200)).toBeUndefined();
    expect(gap(2, ends([5, 9], 300), applied, 200)).toBe('partition 1 at 7 of 9');
    // Applied past the end read earlier (records arrived since): caught up.
    expect(gap(2, ends([4, 6], 300), applied, 200)).toBeUndefined();
  });

  it('names at most three lagging partitions', () => {
    expect(gap(5, ends([9, 9, 9, 9, 9], 300), new Map(), 200)).toBe(
      'partition 0 at 0 of 9, partition 1 at 0 of 9, partition 2 at 0 of 9 (+2 more)',
    );
  });
});

describe('latchTarget', () => {
  const end = (partition: number, endOffset: number, observedAt: number) => ({
    partition,
    endOffset,
    observedAt,
  });

  it('keeps the first end read after the join: under steady writes the latest end always runs ahead', () => {
    // The replica joined at 200; the first read after it saw end 248. Writes go on: later reads see 260, 275...
    let t = latchTarget(undefined, [end(0, 240, 150)], 200);
    expect(t.ends.size).toBe(0);
    t = latchTarget(t, [end(0, 248, 300)], 200);
    t = latchTarget(t, [end(0, 260, 400)], 200);
    t = latchTarget(t, [end(0, 275, 500)], 200);
    expect(t.ends.get(0)).toBe(248);
    // The replica, always ~10 behind the latest end, has replayed what it missed: caught up.
    expect(catchUpGap(1, t, new Map([[0, 265]]))).toBeUndefined();
    // Measured against the latest end it would never be.
    expect(catchUpGap(1, latchTarget(undefined, [end(0, 275, 500)], 200), new Map([[0, 265]]))).toBe(
      'partition 0 at 265 of 275',
    );
  });

  it('completes partitions seen later, and starts over on a new join', () => {
    let t = latchTarget(undefined, [end(0, 5, 300), undefined], 200);
    expect([...t.ends]).toEqual([[0, 5]]);
    t = latchTarget(t, [end(0, 9, 400), end(1, 7, 400)], 200);
    expect([...t.ends]).toEqual([
      [0, 5],
      [1, 7],
    ]);
    // Rejoined at 500: the ends read before it no longer count.
    t = latchTarget(t, [end(0, 9, 400), end(1, 7, 400)], 500);
    expect(t.ends.size).toBe(0);
    expect(catchUpGap(2, t, new Map())).toMatch(/2 partition\(s\) is not known/);
    t = latchTarget(t, [end(0, 12, 600), end(1, 8, 600)], 500);
    expect(
      catchUpGap(
        2,
        t,
        new Map([
          [0, 12],
          [1, 8],
        ]),
      ),
    ).toBeUndefined();
  });

  it('returns the same target when nothing new was learnt', () => {
    const t = latchTarget(undefined, [end(0, 5, 300)], 200);
    expect(latchTarget(t, [end(0, 9, 400)], 200)).toBe(t);
  });
});
