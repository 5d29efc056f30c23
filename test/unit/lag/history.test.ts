import { describe, expect, it } from 'vitest';
import type { LagoonEvent } from '../../../src/core/events.js';
import {
  faultWindows,
  HISTORY_CAPACITY,
  HistoryRing,
  type HistorySample,
  LagHistory,
  sampleOf,
} from '../../../src/lag/history.js';
import type { LagReport, ReplicaLag } from '../../../src/lag/types.js';

const T0 = 1_700_000_000_000;

function sample(i: number, over: Partial<HistorySample> = {}): HistorySample {
  return {
    t: T0 + i * 1000,
    replicas: {
      a: { lagRecords: i, lagSeconds: i / 10, applied: 10 * i, status: 'OK', active: true },
      b: {
        lagRecords: 2 * i,
        lagSeconds: 0.25,
        applied: 5 * i,
        status: i % 2 ? 'WARN' : 'STOP',
        active: false,
      },
    },
    writeRate: 12.3,
    applyRate: 4.5,
    outbox: i % 7,
    kafkaReachable: i % 3 !== 0,
    brokersUp: [1, 3],
    brokersKnown: [1, 2, 3],
    ...over,
  };
}

function replica(node: string, lags: number[], over: Partial<ReplicaLag> = {}): ReplicaLag {
  return {
    group: `lagoon-replica-${node}`,
    node,
    source: 'kafka',
    active: true,
    partitions: lags.map((lag, p) => ({
      partition: p,
      endOffset: 100 + lag,
      appliedOffset: 100,
      lagRecords: lag,
      lagSeconds: lag / 100,
      status: 'OK',
      reason: '',
    })),
    maxLagRecords: Math.max(...lags),
    maxLagSeconds: Math.max(...lags) / 100,
    status: 'OK',
    ...over,
  };
}

function report(at: number, over: Partial<LagReport> = {}): LagReport {
  return {
    node: 'a',
    topic: 't',
    generatedAt: at,
    kafkaReachable: true,
    brokers: [
      { id: 1, up: true },
      { id: 2, up: false },
    ],
    controller: 1,
    replicas: [replica('a', [0, 0], { source: 'self' }), replica('b', [3, 5], { status: 'WARN' })],
    rates: { writesPerSec: 10, appliedPerSec: 9.5 },
    digests: { agree: null, nodes: [] },
    outboxDepth: 2,
    outboxOldestSeconds: 1.5,
    events: [],
    ...over,
  };
}

describe('HistoryRing', () => {
  it('keeps at most 900 samples by default, dropping the oldest', () => {
    const ring = new HistoryRing();
    expect(ring.capacity).toBe(HISTORY_CAPACITY);
    expect(HISTORY_CAPACITY).toBe(900);
    for (let i = 0; i < 1000; i++) expect(ring.push(sample(i))).toBe(true);
    expect(ring.size).toBe(900);
    const all = ring.samples();
    expect(all).toHaveLength(900);
    expect(all[0]!.t).toBe(T0 + 100 * 1000);
    expect(all[899]!.t).toBe(T0 + 999 * 1000);
  });

  it('returns samples oldest first, round-tripping every field, across the wrap', () => {
    const ring = new HistoryRing(5);
    for (let i = 1; i <= 8; i++) ring.push(sample(i));
    const got = ring.samples();
    expect(got.map((s) => s.t)).toEqual([4, 5, 6, 7, 8].map((i) => T0 + i * 1000));
    for (const s of got) {
      const i = (s.t - T0) / 1000;
      expect(s).toEqual(sample(i));
    }
  });

  it('refuses a sample not newer than the last (the ring stays sorted)', () => {
    const ring = new HistoryRing(10);
    expect(ring.push(sample(5))).toBe(true);
    expect(ring.push(sample(5))).toBe(false);
    expect(ring.push(sample(4))).toBe(false);
    expect(ring.push(sample(6, { t: Number.NaN }))).toBe(false);
    expect(ring.size).toBe(1);
  });

  it('filters by since (inclusive), before and after wrapping', () => {
    const ring = new HistoryRing(10);
    for (let i = 0; i < 6; i++) ring.push(sample(i));
    expect(ring.samples(T0 + 3000).map((s) => s.t)).toEqual([3, 4, 5].map((i) => T0 + i * 1000));
    expect(ring.samples(T0 + 3500).map((s) => s.t)).toEqual([4, 5].map((i) => T0 + i * 1000));
    for (let i = 6; i < 25; i++) ring.push(sample(i));
    expect(ring.samples(0)).toHaveLength(10);
    expect(ring.samples(undefined)).toHaveLength(10);
    expect(ring.samples(T0 + 20_000).map((s) => s.t)).toEqual([20, 21, 22, 23, 24].map((i) => T0 + i * 1000));
    expect(ring.samples(T0 + 24_001)).toEqual([]);
    expect(ring.columns(T0 + 23_000).t).toEqual([T0 + 23_000, T0 + 24_000]);
  });

  it('holds constant memory after 10,000 pushes', () => {
    const ring = new HistoryRing();
    const bytes = ring.bytes;
    // 900 × (29 + 16 replica slots × 21) bytes of typed arrays, plus the two slot tables.
    expect(bytes).toBeGreaterThanOrEqual(900 * (29 + 16 * 21));
    expect(bytes).toBeLessThan(340_000);
    for (let i = 0; i < 10_000; i++) {
      // New replica names keep arriving (nodes come and go): slots are reused, never added.
      const s = sample(i);
      s.replicas[`n${Math.floor(i / 500)}`] = {
        lagRecords: 1,
        lagSeconds: 0,
        applied: i,
        status: 'OK',
        active: true,
      };
      ring.push(s);
      if (i % 1000 === 0) expect(ring.bytes).toBe(bytes);
    }
    expect(ring.bytes).toBe(bytes);
    expect(ring.size).toBe(900);
    expect(ring.droppedReplicas).toBe(0);
    // Only the names still in the window are reported.
    expect(Object.keys(ring.columns().replicas).sort()).toEqual(['a', 'b', 'n18', 'n19']);
  });

  it('drops inactive replicas beyond its slots and counts them', () => {
    const ring = new HistoryRing(4, 2);
    const s = sample(1);
    s.replicas.c = { lagRecords: 1, lagSeconds: 0, applied: 0, status: 'OK', active: false };
    ring.push(s);
    expect(ring.droppedReplicas).toBe(1);
    expect(Object.keys(ring.samples()[0]!.replicas).sort()).toEqual(['a', 'b']);
  });

  it('gives a live replica the slot of the one inactive longest, and forgets that one’s samples', () => {
    // Slots full of groups of removed nodes (inactive), as on a long-lived shared cluster: a new
    // node's replica must still be charted, and the evicted one's old rows must not be charted as it.
    const ring = new HistoryRing(10, 2);
    const dead = (i: number) => ({
      lagRecords: i,
      lagSeconds: 0,
      applied: 0,
      status: 'STOP' as const,
      active: false,
    });
    ring.push(sample(1, { replicas: { old1: dead(1), old2: dead(1) } }));
    ring.push(sample(2, { replicas: { old1: { ...dead(2), active: true }, old2: dead(2) } }));
    const live = { lagRecords: 7, lagSeconds: 0, applied: 3, status: 'OK' as const, active: true };
    ring.push(sample(3, { replicas: { old1: dead(3), old2: dead(3), fresh: live } }));
    expect(ring.droppedReplicas).toBe(1);
    const c = ring.columns();
    // old2 (never active) lost its slot to `fresh`; old1 (active at t2) kept its slot.
    expect(Object.keys(c.replicas).sort()).toEqual(['fresh', 'old1']);
    expect(c.replicas.fresh!.lagRecords).toEqual([null, null, 7]);
    expect(c.replicas.old1!.lagRecords).toEqual([1, 2, 3]);
    // Live replicas are never evicted for one another: a second newcomer with only live slots is dropped.
    ring.push(sample(4, { replicas: { old1: { ...dead(4), active: true }, fresh: live, other: live } }));
    expect(ring.droppedReplicas).toBe(2);
    expect(Object.keys(ring.samples().at(-1)!.replicas).sort()).toEqual(['fresh', 'old1']);
  });

  it('serves columns with nulls where a replica was absent', () => {
    const ring = new HistoryRing(10);
    ring.push(sample(1));
    const s = sample(2);
    delete s.replicas.b;
    ring.push(s);
    ring.push(sample(3, { brokersUp: [1, 2, 3] }));
    const c = ring.columns();
    expect(c.t).toEqual([T0 + 1000, T0 + 2000, T0 + 3000]);
    expect(c.replicas.b!.lagRecords).toEqual([2, null, 6]);
    expect(c.replicas.b!.status).toEqual(['WARN', null, 'WARN']);
    expect(c.replicas.b!.active).toEqual([false, null, false]);
    expect(c.replicas.a!.lagSeconds).toEqual([0.1, 0.2, 0.3]);
    expect(c.writeRate).toEqual([12.3, 12.3, 12.3]);
    expect(c.brokersUp).toEqual([
      [1, 3],
      [1, 3],
      [1, 2, 3],
    ]);
    expect(c.brokers).toEqual([1, 2, 3]);
    expect(c.kafkaReachable).toEqual([true, true, false]);
  });
});

describe('HistoryRing — every status', () => {
  it('stores and returns each status, GAP included, with the active bit', () => {
    const statuses = ['OK', 'WARN', 'STALL', 'STOP', 'REWIND', 'GAP'] as const;
    const ring = new HistoryRing(10);
    statuses.forEach((status, i) => {
      ring.push(
        sample(i + 1, {
          replicas: { a: { lagRecords: i, lagSeconds: 0, applied: 0, status, active: i % 2 === 0 } },
        }),
      );
    });
    const c = ring.columns();
    expect(c.replicas.a!.status).toEqual([...statuses]);
    expect(c.replicas.a!.active).toEqual([true, false, true, false, true, false]);
    expect(ring.samples().map((x) => x.replicas.a!.status)).toEqual([...statuses]);
  });

  it('a replica in GAP is sampled with its status', () => {
    const s = sampleOf(report(T0, { replicas: [replica('c', [7], { status: 'GAP' })] }));
    expect(s.replicas.c!.status).toBe('GAP');
  });
});

describe('sampleOf', () => {
  it('sums lag and applied offsets over partitions and keeps status, rates and brokers', () => {
    const s = sampleOf(report(T0));
    expect(s.t).toBe(T0);
    expect(s.replicas.b).toEqual({
      lagRecords: 8,
      lagSeconds: 0.05,
      applied: 200,
      status: 'WARN',
      active: true,
    });
    expect(s.replicas.a!.lagRecords).toBe(0);
    expect(s.brokersUp).toEqual([1]);
    expect(s.brokersKnown).toEqual([1, 2]);
    expect(s.writeRate).toBe(10);
    expect(s.applyRate).toBe(9.5);
    expect(s.outbox).toBe(2);
  });
});

describe('faultWindows', () => {
  const ev = (at: number, kind: string, target?: string): LagoonEvent => ({ at, kind, target });

  it('pairs a fault with the next heal of the same subject and target', () => {
    const w = faultWindows([
      ev(50, 'broker_start', 'broker-1'),
      ev(300, 'broker_start', 'broker-2'),
      ev(100, 'broker_kill', 'broker-2'),
      ev(150, 'node_pause', 'n3'),
      ev(200, 'broker_kill', 'broker-1'),
      ev(250, 'node_resume', 'n3'),
      ev(260, 'note'),
    ]);
    expect(w).toEqual([
      { from: 100, to: 300, kind: 'broker_kill', healKind: 'broker_start', target: 'broker-2' },
      { from: 150, to: 250, kind: 'node_pause', healKind: 'node_resume', target: 'n3' },
      { from: 200, to: null, kind: 'broker_kill', healKind: null, target: 'broker-1' },
    ]);
  });

  it('keeps the first fault of an outage and ignores other subjects’ heals', () => {
    const w = faultWindows([
      ev(1, 'broker_pause', 'broker-2'),
      ev(2, 'broker_kill', 'broker-2'),
      ev(3, 'node_start', 'broker-2'),
      ev(4, 'broker_start', 'broker-2'),
    ]);
    expect(w).toEqual([
      { from: 1, to: 4, kind: 'broker_pause', healKind: 'broker_start', target: 'broker-2' },
    ]);
  });
});

describe('LagHistory', () => {
  it('samples the report, skips a stale one, and answers with events and windows of the period', () => {
    let now = T0;
    const events: LagoonEvent[] = [
      { at: T0 - 60_000, kind: 'broker_kill', target: 'broker-2' },
      { at: T0 - 30_000, kind: 'note' },
      { at: T0 + 1500, kind: 'broker_start', target: 'broker-2' },
    ];
    const h = new LagHistory({ report: () => report(now), events: () => events });
    expect(h.sample()).toBe(true);
    expect(h.sample()).toBe(false); // the tracker has not ticked since
    now += 1000;
    expect(h.sample()).toBe(true);
    now += 1000;
    h.sample();
    const all = h.query();
    expect(all.node).toBe('a');
    expect(all.capacity).toBe(900);
    expect(all.intervalMs).toBe(1000);
    expect(all.t).toEqual([T0, T0 + 1000, T0 + 2000]);
    expect(all.replicas.b!.lagRecords).toEqual([8, 8, 8]);
    expect(all.windows).toEqual([
      { from: T0 - 60_000, to: T0 + 1500, kind: 'broker_kill', healKind: 'broker_start', target: 'broker-2' },
    ]);
    // The window's opening event comes along even though it predates the period; the note does not.
    expect(all.events.map((e) => e.kind)).toEqual(['broker_kill', 'broker_start']);
    const recent = h.query(T0 + 1000);
    expect(recent.t).toEqual([T0 + 1000, T0 + 2000]);
    expect(h.query(T0 + 5000).windows).toEqual([]);
  });

  it('keeps sampling on its timer until closed; close is idempotent', async () => {
    let now = T0;
    const h = new LagHistory({ report: () => report(now++), events: () => [], intervalMs: 10 });
    h.start();
    h.start();
    await new Promise((r) => setTimeout(r, 80));
    h.close();
    h.close();
    const n = h.ring.size;
    expect(n).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 40));
    expect(h.ring.size).toBe(n);
  });

  it('survives a report that throws', () => {
    const h = new LagHistory({
      report: () => {
        throw new Error('boom');
      },
      events: () => [],
    });
    expect(h.sample()).toBe(false);
  });
});
