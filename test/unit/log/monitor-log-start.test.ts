import type { Kafka } from 'kafkajs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { HighWatermarks, WatermarkAnswer } from '../../../src/log/high-watermarks.js';
import { ClusterMonitor, type ClusterView } from '../../../src/log/monitor.js';

// The cluster monitor keeps each partition's log start offset (`low` of kafkajs's fetchTopicOffsets) next
// to its end offset, keeping the last known value when a read fails. Kafka is faked: only the admin calls
// the monitor makes.

const TOPIC = 'lagoon';

type Offsets = Array<{ partition: number; low: number; high: number }>;

function fakeKafka(state: { offsets: Offsets | Error; calls: number }) {
  const admin = {
    connect: async () => {},
    disconnect: async () => {},
    fetchTopicMetadata: async () => ({
      topics: [
        {
          name: TOPIC,
          partitions: [
            { partitionId: 0, leader: 1, isr: [1] },
            { partitionId: 1, leader: 1, isr: [1] },
          ],
        },
      ],
    }),
    // Port 1 on loopback refuses at once: the reachability probe after a failed round is quick.
    describeCluster: async () => ({ brokers: [{ nodeId: 1, host: '127.0.0.1', port: 1 }] }),
    fetchTopicOffsets: async () => {
      state.calls++;
      if (state.offsets instanceof Error) throw state.offsets;
      return state.offsets.map((o) => ({
        partition: o.partition,
        offset: String(o.high),
        high: String(o.high),
        low: String(o.low),
      }));
    },
  };
  return { admin: () => admin } as unknown as Kafka;
}

/** High watermarks answered by the fake "leader": always the given ends. */
function fakeHw(ends: number[]): HighWatermarks {
  return {
    fetch: async (_address: string, _topic: string, ps: readonly number[]) =>
      new Map<number, WatermarkAnswer>(ps.map((p) => [p, { offset: ends[p]! }])),
    close: () => {},
  } as unknown as HighWatermarks;
}

const monitors: ClusterMonitor[] = [];
afterEach(async () => {
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});

function monitor(kafka: Kafka, extra: Partial<ConstructorParameters<typeof ClusterMonitor>[1]> = {}) {
  const views: ClusterView[] = [];
  const m = new ClusterMonitor(kafka, {
    topic: TOPIC,
    minInsyncReplicas: 1,
    intervalMs: 50,
    onRefresh: (v) => views.push(v),
    ...extra,
  });
  monitors.push(m);
  return { m, views };
}

/** Generous bounds: a shared 2-core machine can be many times slower than a laptop. */
const wait = (f: () => void) => vi.waitFor(f, { timeout: 20_000, interval: 20 });

const starts = (m: ClusterMonitor) => m.snapshot().partitions.map((p) => p.logStartOffset);

describe('ClusterMonitor: log start offsets (kafkajs ListOffsets path)', () => {
  it('keeps each partition’s log start offset beside its end offset', async () => {
    const state = {
      offsets: [
        { partition: 0, low: 0, high: 10 },
        { partition: 1, low: 1235, high: 2000 },
      ] as Offsets | Error,
      calls: 0,
    };
    const { m, views } = monitor(fakeKafka(state));
    m.start();
    await wait(() => expect(views.length).toBeGreaterThan(0));
    expect(m.partition(0)).toMatchObject({ endOffset: 10, logStartOffset: 0 });
    expect(m.partition(1)).toMatchObject({ endOffset: 2000, logStartOffset: 1235 });
    expect(views[0]!.partitions[1]!.logStartOffset).toBe(1235);
  });

  it('keeps the last known log start (and end) when a refresh fails, and takes a new one after', async () => {
    const state = {
      offsets: [
        { partition: 0, low: 5, high: 10 },
        { partition: 1, low: 7, high: 20 },
      ] as Offsets | Error,
      calls: 0,
    };
    const { m, views } = monitor(fakeKafka(state));
    m.start();
    await wait(() => expect(views.length).toBeGreaterThan(0));
    expect(starts(m)).toEqual([5, 7]);
    state.offsets = new Error('broker gone');
    const failedFrom = state.calls;
    await wait(() => expect(state.calls).toBeGreaterThan(failedFrom + 1));
    expect(starts(m)).toEqual([5, 7]);
    expect(m.partition(1)?.endOffset).toBe(20);
    state.offsets = [
      { partition: 0, low: 9, high: 12 },
      { partition: 1, low: 7, high: 30 },
    ];
    await wait(() => expect(starts(m)).toEqual([9, 7]));
    expect(m.partition(1)?.endOffset).toBe(30);
  });

  it('ignores a low that is not a non-negative integer (the last known value stays)', async () => {
    const state = {
      offsets: [
        { partition: 0, low: 3, high: 10 },
        { partition: 1, low: 4, high: 10 },
      ] as Offsets | Error,
      calls: 0,
    };
    const { m, views } = monitor(fakeKafka(state));
    m.start();
    await wait(() => expect(views.length).toBeGreaterThan(0));
    state.offsets = [
      { partition: 0, low: -1, high: 11 },
      { partition: 1, low: Number.NaN, high: 11 },
    ];
    await wait(() => expect(m.partition(0)?.endOffset).toBe(11));
    expect(starts(m)).toEqual([3, 4]);
  });
});

describe('ClusterMonitor: log start offsets (raw high-watermark path)', () => {
  it('reads them on the side, at most every logStartRefreshMs', async () => {
    const state = {
      offsets: [
        { partition: 0, low: 100, high: 0 },
        { partition: 1, low: 200, high: 0 },
      ] as Offsets | Error,
      calls: 0,
    };
    const { m, views } = monitor(fakeKafka(state), {
      highWatermarks: fakeHw([150, 250]),
      logStartRefreshMs: 60_000,
    });
    m.start();
    await wait(() => expect(starts(m)).toEqual([100, 200]));
    // End offsets come from the high watermarks, not from kafkajs's answer.
    expect(m.partition(0)?.endOffset).toBe(150);
    // Several more rounds: no second read within logStartRefreshMs, and the values stay.
    const rounds = views.length;
    await wait(() => expect(views.length).toBeGreaterThan(rounds + 2));
    expect(state.calls).toBe(1);
    expect(starts(m)).toEqual([100, 200]);
  });

  it('keeps the last known values when the side read fails', async () => {
    const state = {
      offsets: [
        { partition: 0, low: 1, high: 0 },
        { partition: 1, low: 2, high: 0 },
      ] as Offsets | Error,
      calls: 0,
    };
    const { m, views } = monitor(fakeKafka(state), {
      highWatermarks: fakeHw([10, 10]),
      logStartRefreshMs: 1,
    });
    m.start();
    await wait(() => expect(starts(m)).toEqual([1, 2]));
    state.offsets = new Error('leader moved');
    const from = state.calls;
    await wait(() => expect(state.calls).toBeGreaterThan(from + 1));
    // Rounds go on (end offsets from the high watermarks) and the log starts stay.
    expect(views.at(-1)!.reachable).toBe(true);
    expect(starts(m)).toEqual([1, 2]);
    state.offsets = [
      { partition: 0, low: 6, high: 0 },
      { partition: 1, low: 2, high: 0 },
    ];
    await wait(() => expect(starts(m)).toEqual([6, 2]));
  });

  it('is 0 until first learned', async () => {
    const state = { offsets: new Error('not yet') as Offsets | Error, calls: 0 };
    const { m, views } = monitor(fakeKafka(state), { highWatermarks: fakeHw([4, 5]) });
    m.start();
    await wait(() => expect(views.length).toBeGreaterThan(0));
    expect(starts(m)).toEqual([0, 0]);
    expect(m.partition(1)?.endOffset).toBe(5);
  });
});
