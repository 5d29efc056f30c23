import type { Kafka } from 'kafkajs';
import client from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventLog } from '../../../src/lag/events.js';
import { registerLagMetrics } from '../../../src/lag/metrics.js';
import { PeerSet } from '../../../src/lag/peer-set.js';
import { LagTracker } from '../../../src/lag/tracker.js';
import type { LagReport, LagStatus, PartitionLag } from '../../../src/lag/types.js';
import type { ClusterMonitor, ClusterView, PartitionView } from '../../../src/log/monitor.js';
import type { ReplicaStore } from '../../../src/store/replica-store.js';

// GAP end to end inside one node, Kafka faked: the monitor's log start offset reaches the tracker's
// samples, /v1/lag's report shows GAP with its reason, and lagoon_lag_status has a GAP series.

const wait = (f: () => void) => vi.waitFor(f, { timeout: 20_000, interval: 20 });

function view(parts: Array<{ end: number; logStart: number }>): ClusterView {
  return {
    // Unreachable: the tracker's tick then asks Kafka nothing (no groups, no fresh round).
    reachable: false,
    brokers: [],
    lastOkAt: 0,
    lastError: 'fake',
    partitions: parts.map(
      (p, partition): PartitionView => ({
        partition,
        leader: 1,
        isr: [1],
        endOffset: p.end,
        logStartOffset: p.logStart,
        observedAt: Date.now(),
      }),
    ),
  };
}

const trackers: LagTracker[] = [];
afterEach(async () => {
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

function tracker(state: { view: ClusterView; applied: number[] }) {
  const t = new LagTracker({
    nodeId: 'n1',
    topic: 'lagoon',
    partitions: state.applied.length,
    selfGroup: 'lagoon-replica-n1',
    kafka: {} as Kafka,
    monitor: { snapshot: () => state.view } as unknown as ClusterMonitor,
    store: {
      appliedOffsets: () => new Map(state.applied.map((a, p) => [p, a])),
      digests: () => [],
    } as unknown as ReplicaStore,
    events: new EventLog(),
    peers: new PeerSet([], () => 'http://127.0.0.1:1'),
    replicaProgressAt: () => Date.now(),
    intervalMs: 20,
  });
  trackers.push(t);
  return t;
}

const self = (r: LagReport) => r.replicas.find((x) => x.source === 'self')!;

describe('LagTracker: GAP from the monitor’s log start offset', () => {
  it('a partition applied below the log start is GAP with the deleted range; the replica is GAP', async () => {
    const state = {
      view: view([
        { end: 2_000, logStart: 1_235 },
        { end: 50, logStart: 0 },
      ]),
      applied: [0, 50],
    };
    const t = tracker(state);
    t.start();
    await wait(() => expect(self(t.report()).partitions[0]!.status).toBe('GAP'));
    const r = self(t.report());
    const p0 = r.partitions[0]!;
    expect(p0).toMatchObject<Partial<PartitionLag>>({
      partition: 0,
      endOffset: 2_000,
      appliedOffset: 0,
      logStartOffset: 1_235,
      lagRecords: 2_000,
    });
    expect(p0.reason).toBe(
      "offsets 0–1234 were deleted by retention before this replica applied them; it serves nothing from this partition until it is rebuilt from a peer's snapshot",
    );
    expect(r.partitions[1]!.status).not.toBe('GAP');
    expect(r.partitions[1]!.logStartOffset).toBe(0);
    expect(r.status).toBe('GAP');
  });

  it('applied exactly at the log start is not a gap, nor 0 at log start 0', async () => {
    const state = {
      view: view([
        { end: 500, logStart: 500 },
        { end: 0, logStart: 0 },
      ]),
      applied: [500, 0],
    };
    const t = tracker(state);
    t.start();
    await wait(() => expect(self(t.report()).partitions[0]!.logStartOffset).toBe(500));
    const r = self(t.report());
    expect(r.partitions.map((p) => p.status)).toEqual(['OK', 'OK']);
  });

  it('leaves GAP once the replica is past the log start (rebuilt from a snapshot)', async () => {
    const state = { view: view([{ end: 100, logStart: 60 }]), applied: [10] };
    const t = tracker(state);
    t.start();
    await wait(() => expect(self(t.report()).status).toBe('GAP'));
    state.applied = [100];
    await wait(() => expect(self(t.report()).partitions[0]!.status).toBe('OK'));
  });
});

describe('lagoon_lag_status', () => {
  function report(status: LagStatus): LagReport {
    return {
      node: 'n1',
      topic: 'lagoon',
      generatedAt: 0,
      kafkaReachable: true,
      brokers: [],
      controller: null,
      replicas: [
        {
          group: 'lagoon-replica-n1',
          node: 'n1',
          source: 'self',
          active: true,
          partitions: [
            {
              partition: 0,
              endOffset: 10,
              logStartOffset: 8,
              appliedOffset: 2,
              lagRecords: 8,
              lagSeconds: 0,
              status,
              reason: '',
            },
          ],
          maxLagRecords: 8,
          maxLagSeconds: 0,
          status,
        },
      ],
      rates: { writesPerSec: 0, appliedPerSec: 0 },
      digests: { agree: null, nodes: [] },
      outboxDepth: 0,
      outboxOldestSeconds: 0,
      events: [],
    };
  }

  async function series(status: LagStatus): Promise<Map<string, number>> {
    const registry = new client.Registry();
    registerLagMetrics(registry, () => report(status));
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'lagoon_lag_status')!;
    return new Map(
      (metric.values as Array<{ labels: Record<string, string>; value: number }>).map((v) => [
        String(v.labels.status),
        v.value,
      ]),
    );
  }

  it('has a GAP series: 1 while the partition is in GAP, 0 for every other status', async () => {
    expect(Object.fromEntries(await series('GAP'))).toEqual({
      OK: 0,
      WARN: 0,
      STALL: 0,
      STOP: 0,
      REWIND: 0,
      GAP: 1,
    });
  });

  it('keeps the other statuses as they were, GAP 0 when not in it', async () => {
    expect(Object.fromEntries(await series('REWIND'))).toEqual({
      OK: 0,
      WARN: 0,
      STALL: 0,
      STOP: 0,
      REWIND: 1,
      GAP: 0,
    });
    expect((await series('OK')).get('OK')).toBe(1);
  });

  it('documents the statuses, GAP included, in its HELP text', async () => {
    const registry = new client.Registry();
    registerLagMetrics(registry, () => report('OK'));
    const text = await registry.getSingleMetricAsString('lagoon_lag_status');
    const help = text.split('\n').find((l) => l.startsWith('# HELP'))!;
    for (const s of ['OK', 'WARN', 'STALL', 'STOP', 'REWIND', 'GAP']) expect(help).toContain(s);
    expect(help).toMatch(/GAP \(records it never applied were deleted by retention/);
  });
});
