import type { Admin, Kafka } from 'kafkajs';
import { LagWindow, worstStatus } from '../core/lag-status.js';
import { OffsetTimeline } from '../core/lag-time.js';
import { type GroupOffsets, groupOffsets } from '../log/groups.js';
import type { ClusterMonitor } from '../log/monitor.js';
import type { ReplicaStore } from '../store/replica-store.js';
import type { EventLog } from './events.js';
import type { PeerSet } from './peer-set.js';
import type { BrokerView, LagReport, PartitionLag, ReplicaLag } from './types.js';

export const REPLICA_GROUP_PREFIX = 'lagoon-replica-';

export interface LagTrackerOptions {
  nodeId: string;
  topic: string;
  partitions: number;
  selfGroup: string;
  kafka: Kafka;
  monitor: ClusterMonitor;
  store: ReplicaStore;
  events: EventLog;
  /** Other nodes' base URLs, for digest agreement: the configured ones and those that introduced themselves. */
  peers: PeerSet;
  /** This node's own base URL, sent to peers in `Lagoon-Peer`. */
  selfUrl?: () => string;
  /** Bearer token for the peers' /v1/digest, when they require one (LAGOON_API_TOKENS; needs `read`). */
  peerToken?: string | undefined;
  /** ms of the replica's last applied batch (progress signal for STALL vs STOP), 0 if none. */
  replicaProgressAt: () => number;
  /** The active KRaft controller, when it can be learned cheaply. */
  controller?: () => Promise<number | undefined>;
  /** This node's outbox of buffered writes: entries waiting and the oldest one's age. */
  outbox?: () => { records: number; oldestSeconds: number };
  intervalMs?: number;
}

interface RateSample {
  at: number;
  end: number;
  applied: number;
}

/**
 * Builds the node's whole lag picture every interval: this replica from SQLite, every other replica
 * from its consumer group's committed offsets in Kafka (so a stopped, paused or dead replica stays
 * visible), time lag from an offset→time timeline, Burrow-style status over a sliding window,
 * brokers, controller, rates, digest agreement and events. Served at /v1/lag and as metrics.
 */
export class LagTracker {
  private readonly o: Required<Omit<LagTrackerOptions, 'controller' | 'outbox' | 'peerToken' | 'selfUrl'>> &
    Pick<LagTrackerOptions, 'controller' | 'outbox' | 'peerToken' | 'selfUrl'>;
  private readonly timelines: OffsetTimeline[] = [];
  private readonly windows = new Map<string, LagWindow>();
  private readonly knownBrokers = new Set<number>();
  private readonly rateSamples: RateSample[] = [];
  private admin: Admin | undefined;
  private groups: GroupOffsets[] = [];
  private controller: number | null = null;
  private digests: LagReport['digests'] = { agree: null, nodes: [] };
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  /**
   * Log start offsets per partition as known at the start of the last tick, before any applied or
   * committed offset was read: a replica that moves past the log start while the offsets are being
   * read is not shown in GAP for it.
   */
  private logStarts: number[] = [];
  /** The same, as known before the other replicas' committed offsets (`groups`) were last read. */
  private groupLogStarts: number[] = [];
  private closed = false;
  private latest: LagReport;

  constructor(opts: LagTrackerOptions) {
    this.o = { intervalMs: 1000, ...opts };
    for (let p = 0; p < opts.partitions; p++) this.timelines.push(new OffsetTimeline());
    this.latest = this.build(Date.now(), opts.store.appliedOffsets());
  }

  start(): void {
    // Fixed rate: a slow tick (Kafka round trips under load) eats into the wait, not into the rate.
    const loop = async () => {
      if (this.closed) return;
      const started = Date.now();
      await this.tick().catch(() => {});
      if (!this.closed)
        this.timer = setTimeout(loop, Math.max(50, this.o.intervalMs - (Date.now() - started)));
    };
    void loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.admin?.disconnect().catch(() => {});
  }

  /** Exact produce times of applied records help the timeline (called by the replica after each batch). */
  observeRecord(partition: number, offset: number, timestamp: number): void {
    this.timelines[partition]?.observeRecord(offset, timestamp);
  }

  report(): LagReport {
    return { ...this.latest, events: this.o.events.list(), generatedAt: this.latest.generatedAt };
  }

  private async tick(): Promise<void> {
    this.ticks++;
    // Sampling order matters: log start offsets first (they only grow, so an earlier value is a lower
    // bound: a replica found below it really missed deleted records), then applied and committed offsets,
    // end offsets after, so a lag figure is never smaller than the truth (end is read no earlier than
    // the position it is compared with).
    const first = this.o.monitor.snapshot().partitions;
    const logStarts = Array.from({ length: this.o.partitions }, (_, p) => first[p]?.logStartOffset ?? 0);
    const selfApplied = this.o.store.appliedOffsets();
    let view = this.o.monitor.snapshot();
    for (const p of view.partitions)
      if (p) this.timelines[p.partition]?.observeEnd(p.endOffset, p.observedAt);
    if (view.reachable) {
      for (const b of view.brokers) this.knownBrokers.add(b);
      try {
        this.admin ??= await this.connectAdmin();
        this.groups = await groupOffsets(this.admin, this.o.topic, REPLICA_GROUP_PREFIX);
        this.groupLogStarts = logStarts;
      } catch {
        const a = this.admin;
        this.admin = undefined;
        await a?.disconnect().catch(() => {});
      }
      try {
        await this.o.monitor.freshEndOffsets(1000);
        view = this.o.monitor.snapshot();
      } catch {
        // keep the last view
      }
      // The active controller moves rarely, and each lookup is a connection to every broker: every 10th tick.
      if (this.o.controller && this.ticks % 10 === 1) {
        this.controller = (await this.o.controller().catch(() => undefined)) ?? null;
      }
    } else {
      this.controller = null;
    }
    for (const p of view.partitions)
      if (p) this.timelines[p.partition]?.observeEnd(p.endOffset, p.observedAt);
    if (this.ticks % 4 === 0) await this.refreshDigests();
    this.logStarts = logStarts;
    this.latest = this.build(Date.now(), selfApplied);
  }

  private async connectAdmin(): Promise<Admin> {
    const admin = this.o.kafka.admin({ retry: { retries: 0 } });
    await admin.connect();
    return admin;
  }

  private build(now: number, selfApplied: Map<number, number>): LagReport {
    const view = this.o.monitor.snapshot();
    const ends = Array.from({ length: this.o.partitions }, (_, p) => view.partitions[p]?.endOffset ?? 0);
    const starts = Array.from({ length: this.o.partitions }, (_, p) => this.logStarts[p] ?? 0);
    const groupStarts = Array.from({ length: this.o.partitions }, (_, p) => this.groupLogStarts[p] ?? 0);
    const replicas: ReplicaLag[] = [];
    const progress = this.o.replicaProgressAt();
    replicas.push(
      this.replicaLag(
        now,
        this.o.selfGroup,
        'self',
        true,
        ends,
        starts,
        (p) => selfApplied.get(p) ?? 0,
        progress || undefined,
      ),
    );
    for (const g of this.groups) {
      if (g.group === this.o.selfGroup) continue;
      const active = g.members > 0 && g.state === 'Stable';
      replicas.push(
        this.replicaLag(
          now,
          g.group,
          'kafka',
          active,
          ends,
          groupStarts,
          (p) => g.offsets.get(p) ?? 0,
          undefined,
        ),
      );
    }
    const sumEnd = ends.reduce((a, b) => a + b, 0);
    const sumApplied = [...selfApplied.values()].reduce((a, b) => a + b, 0);
    this.rateSamples.push({ at: now, end: sumEnd, applied: sumApplied });
    while (this.rateSamples.length > 2 && now - this.rateSamples[0]!.at > 5000) this.rateSamples.shift();
    const first = this.rateSamples[0]!;
    const span = (now - first.at) / 1000;
    const brokers: BrokerView[] = [...this.knownBrokers]
      .sort((a, b) => a - b)
      .map((id) => ({ id, up: view.reachable && view.brokers.includes(id) }));
    const outbox = this.o.outbox?.();
    return {
      node: this.o.nodeId,
      topic: this.o.topic,
      generatedAt: now,
      kafkaReachable: view.reachable,
      brokers,
      controller: this.controller,
      replicas,
      rates: {
        writesPerSec: span > 0 ? Math.max(0, (sumEnd - first.end) / span) : 0,
        appliedPerSec: span > 0 ? Math.max(0, (sumApplied - first.applied) / span) : 0,
      },
      digests: this.digests,
      outboxDepth: outbox?.records ?? 0,
      outboxOldestSeconds: outbox?.oldestSeconds ?? 0,
      events: [],
    };
  }

  private replicaLag(
    now: number,
    group: string,
    source: 'self' | 'kafka',
    active: boolean,
    ends: number[],
    logStarts: number[],
    appliedOf: (p: number) => number,
    progressAt: number | undefined,
  ): ReplicaLag {
    const partitions: PartitionLag[] = ends.map((endRaw, p) => {
      const applied = appliedOf(p);
      const logStart = logStarts[p] ?? 0;
      // The log never ends before it starts: a log start read after the end offset still bounds it.
      const end = Math.max(endRaw, applied, logStart);
      const key = `${group}/${p}`;
      let w = this.windows.get(key);
      if (!w) {
        w = new LagWindow();
        this.windows.set(key, w);
      }
      w.push({
        at: now,
        appliedOffset: applied,
        endOffset: end,
        logStartOffset: logStart,
        active,
        ...(progressAt ? { committedAt: progressAt } : {}),
      });
      const ev = w.evaluate(now);
      const lagRecords = end - applied;
      return {
        partition: p,
        endOffset: end,
        logStartOffset: logStart,
        appliedOffset: applied,
        lagRecords,
        lagSeconds: lagRecords === 0 ? 0 : (this.timelines[p]?.timeLagMs(applied, end, now) ?? 0) / 1000,
        status: ev.status,
        reason: ev.reason,
      };
    });
    return {
      group,
      node: group.startsWith(REPLICA_GROUP_PREFIX) ? group.slice(REPLICA_GROUP_PREFIX.length) : group,
      source,
      active,
      partitions,
      maxLagRecords: Math.max(0, ...partitions.map((p) => p.lagRecords)),
      maxLagSeconds: Math.max(0, ...partitions.map((p) => p.lagSeconds)),
      status: worstStatus(partitions.map((p) => p.status)),
    };
  }

  private async refreshDigests(): Promise<void> {
    const own = {
      node: this.o.nodeId,
      partitions: this.o.store.digests(),
    };
    const urls = this.o.peers.list();
    const peers = await Promise.all(
      urls.map(async (url) => {
        try {
          const r = await fetch(`${url}/v1/digest`, {
            signal: AbortSignal.timeout(800),
            // Introduces this node, so a peer that was not given it in --peers compares digests with it too.
            headers: {
              ...(this.o.selfUrl?.() ? { 'lagoon-peer': this.o.selfUrl() } : {}),
              ...(this.o.peerToken ? { authorization: `Bearer ${this.o.peerToken}` } : {}),
            },
          });
          // A refusal (401/403: another token list) or an error counts as unreachable, not as a digest.
          this.o.peers.observe(url, r.ok);
          if (!r.ok) return undefined;
          return (await r.json()) as typeof own;
        } catch {
          this.o.peers.observe(url, false);
          return undefined;
        }
      }),
    );
    // One entry per node: a node reached through two URLs (configured through a proxy, learned directly) counts once.
    const all: Array<typeof own> = [];
    for (const n of [own, ...peers]) if (n && !all.some((x) => x.node === n.node)) all.push(n);
    // Digests are comparable only at equal applied offsets: compare those partitions, ignore the rest.
    let compared = 0;
    let agree = true;
    for (let p = 0; p < this.o.partitions; p++) {
      const byOffset = new Map<number, string[]>();
      for (const n of all) {
        const d = n.partitions.find((x) => x.partition === p);
        if (!d) continue;
        byOffset.set(d.appliedOffset, [...(byOffset.get(d.appliedOffset) ?? []), d.digest]);
      }
      for (const list of byOffset.values()) {
        if (list.length < 2) continue;
        compared++;
        if (new Set(list).size > 1) agree = false;
      }
    }
    this.digests = {
      agree: all.length < 2 || compared === 0 ? null : agree,
      nodes: [
        ...all.map((n) => ({
          node: n.node,
          digest: combine(n.partitions.map((x) => x.digest)),
          appliedOffsets: n.partitions.map((x) => x.appliedOffset),
        })),
        ...urls
          .filter((_, i) => peers[i] === undefined)
          .map((url) => ({ node: url, digest: null, appliedOffsets: [] })),
      ],
    };
  }
}

/** A short fingerprint of a node's per-partition digests, for display. */
function combine(digests: string[]): string {
  return digests.map((d) => d.slice(0, 4)).join('');
}
