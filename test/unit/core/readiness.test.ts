import { describe, expect, it } from 'vitest';
import { catchUpGap, type ReadinessFacts, readiness } from '../../../src/core/readiness.js';

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

  it('needs a join, and an end offset of every partition read after it', () => {
    expect(catchUpGap(2, ends([5, 5], 100), new Map(), 0)).toBe('has not joined its consumer group yet');
    // Ends read before the join may be older than what the group hands over: they do not count.
    expect(catchUpGap(2, ends([0, 0], 100), new Map(), 200)).toMatch(/2 partition\(s\) is not known/);
    expect(catchUpGap(2, [ends([0], 300)[0]], new Map(), 200)).toMatch(/1 partition\(s\) is not known/);
  });

  it('is caught up when every applied offset reached the end read after the join', () => {
    const applied = new Map([
      [0, 5],
      [1, 7],
    ]);
    expect(catchUpGap(2, ends([5, 7], 300), applied, 200)).toBeUndefined();
    expect(catchUpGap(2, ends([5, 9], 300), applied, 200)).toBe('partition 1 at 7 of 9');
    // Applied past the end read earlier (records arrived since): caught up.
    expect(catchUpGap(2, ends([4, 6], 300), applied, 200)).toBeUndefined();
  });

  it('names at most three lagging partitions', () => {
    const gap = catchUpGap(5, ends([9, 9, 9, 9, 9], 300), new Map(), 200);
    expect(gap).toBe('partition 0 at 0 of 9, partition 1 at 0 of 9, partition 2 at 0 of 9 (+2 more)');
  });
});
