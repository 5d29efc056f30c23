import net from 'node:net';
import type { Admin, Kafka } from 'kafkajs';
import { LagoonError } from '../errors.js';
import type { HighWatermarks } from './high-watermarks.js';
import { withTimeout } from './kafka-wire.js';
import { logStartsOf } from './topic.js';

/** What the node last learned about one partition of the Lagoon topic. */
export interface PartitionView {
  partition: number;
  leader: number;
  isr: number[];
  /** High watermark: the next offset to be written (committed records end here). */
  endOffset: number;
  /**
   * Log start offset: the earliest offset still in the log (`low` of ListOffsets EARLIEST); records
   * below it were deleted by retention (or DeleteRecords). 0 until first learned; a failed read keeps
   * the last known value. May be read at another time than endOffset (see ClusterMonitor); as it only
   * grows while the topic lives, a value read earlier is a lower bound of the current one.
   */
  logStartOffset: number;
  /** When the request that produced endOffset was *sent* (ms): everything acked before then is below it. */
  observedAt: number;
}

export interface ClusterView {
  reachable: boolean;
  brokers: number[];
  lastOkAt: number;
  lastError: string | undefined;
  partitions: PartitionView[];
}

/** How often, at most, log start offsets are read when end offsets come from the raw high-watermark path. */
export const DEFAULT_LOG_START_REFRESH_MS = 5_000;

/**
 * Watches the Lagoon topic from one node: leaders, ISR, end offsets and log start offsets, refreshed on
 * an interval. Feeds the write gate, lag (and its GAP status) and staleness; and answers strong reads
 * with an end offset read *after* the read began (a fresh ListOffsets round, shared by reads that arrive
 * together).
 *
 * Log start offsets move only when retention deletes a segment (or records are deleted), so with raw
 * high watermarks they are read on the side — kafkajs's fetchTopicOffsets, at most every
 * `logStartRefreshMs`, never awaited by a round — and strong reads pay nothing for them. Without raw
 * high watermarks (SASL) the round's fetchTopicOffsets carries them (`low`) at no extra cost.
 *
 * Reachability is judged carefully, because it decides whether writes are refused at once: one failed
 * round (a request that went to a broker that just died) says nothing about the others. "No broker
 * reachable" means: no Kafka request succeeded lately AND no broker accepts a TCP connection.
 */
export class ClusterMonitor {
  private readonly kafka: Kafka;
  private readonly topic: string;
  private readonly minIsr: number;
  private readonly intervalMs: number;
  private readonly onRefresh: ((view: ClusterView) => void) | undefined;
  private readonly bootstrap: string[];
  private brokerAddresses: string[] = [];
  /** Some broker accepted TCP at the last probe (run after a failed round); false until first contact. */
  private tcpReachable = false;
  private admin: Admin | undefined;
  /** High watermarks per leader (absent with SASL: kafkajs's ListOffsets then). */
  private readonly hw: HighWatermarks | undefined;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<Map<number, PartitionView>> | undefined;
  private nextRound: Promise<Map<number, PartitionView>> | undefined;
  private closed = false;
  private lastRoundAt = 0;
  private readonly logStartRefreshMs: number;
  /** Last known log start offset per partition (kept when a read fails). */
  private readonly logStarts = new Map<number, number>();
  private logStartAt = 0;
  private logStartInFlight = false;
  private view: ClusterView = {
    reachable: false,
    brokers: [],
    lastOkAt: 0,
    lastError: 'not yet contacted',
    partitions: [],
  };

  constructor(
    kafka: Kafka,
    opts: {
      topic: string;
      minInsyncReplicas: number;
      intervalMs: number;
      /** host:port list, probed by TCP when Kafka requests fail. */
      bootstrap?: string[];
      onRefresh?: (view: ClusterView) => void;
      highWatermarks?: HighWatermarks;
      /** With highWatermarks: how often, at most, log start offsets are read (default 5 s). */
      logStartRefreshMs?: number;
    },
  ) {
    this.logStartRefreshMs = opts.logStartRefreshMs ?? DEFAULT_LOG_START_REFRESH_MS;
    this.hw = opts.highWatermarks;
    this.bootstrap = opts.bootstrap ?? [];
    this.onRefresh = opts.onRefresh;
    this.kafka = kafka;
    this.topic = opts.topic;
    this.minIsr = opts.minInsyncReplicas;
    this.intervalMs = opts.intervalMs;
  }

  start(): void {
    // One round per interval, whoever asks: a round that strong reads or the lag tracker already
    // started (freshEndOffsets) counts, so the periodic refresh does not repeat it.
    const tick = async () => {
      if (this.closed) return;
      if (Date.now() - this.lastRoundAt >= this.intervalMs) await this.refresh().catch(() => {});
      const wait = Math.max(50, this.intervalMs - (Date.now() - this.lastRoundAt));
      if (!this.closed) this.timer = setTimeout(tick, wait);
    };
    void tick();
  }

  snapshot(): ClusterView {
    return { ...this.view, reachable: this.reachable() };
  }

  /**
   * Whether Kafka may take a request at all: a round succeeded within a few intervals, or (rounds
   * failing) some broker still accepts TCP connections — e.g. one broker died and the round asked it.
   */
  reachable(): boolean {
    const fresh = Date.now() - this.view.lastOkAt < Math.max(3000, this.intervalMs * 4);
    return fresh || this.tcpReachable;
  }

  partition(p: number): PartitionView | undefined {
    return this.view.partitions[p];
  }

  /**
   * Why `partition` cannot take an acks=all write now — only what cannot succeed: no broker reachable,
   * or fewer in-sync replicas than min.insync.replicas. Undefined otherwise: a partition between
   * leaders is not refused, its write waits for the new leader (Writer). Each partition is judged on
   * its own. (A missing or unsafe topic is the node's topic check, not guessed from a failed round.)
   */
  writeGate(partition: number): string | undefined {
    const v = this.view;
    if (!this.reachable()) return `no Kafka broker reachable${v.lastError ? `: ${v.lastError}` : ''}`;
    const p = v.partitions[partition];
    // No metadata yet, or metadata too old to judge by (rounds failing): let the producer try.
    if (!p || Date.now() - v.lastOkAt > 10_000) return undefined;
    if (p.isr.length < this.minIsr) {
      return `partition ${partition} has ${p.isr.length} in-sync replica(s), min.insync.replicas is ${this.minIsr}`;
    }
    return undefined;
  }

  /**
   * End offsets from a ListOffsets round that starts after this call (linearizable reads need an
   * offset read after the read began). Concurrent callers share the next round. A round that fails
   * while Kafka is still reachable (a partition leader just died) is retried until `timeoutMs`:
   * strong reads wait for the new leader as writes do. Fails at once (503) when no broker is reachable,
   * 504 `strong_timeout` when the deadline passes.
   */
  async freshEndOffsets(
    timeoutMs: number,
    want: readonly number[] = [],
  ): Promise<Map<number, PartitionView>> {
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    for (;;) {
      if (!this.reachable()) {
        throw new LagoonError(
          'kafka_unavailable',
          `No Kafka broker reachable, so the latest offset cannot be read${lastError ? ` (${lastError})` : ''}`,
          { status: 503, retryable: true },
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LagoonError(
          'strong_timeout',
          `Could not read the latest offset from Kafka within ${timeoutMs} ms${lastError ? ` (${lastError})` : ''}`,
          { status: 504, retryable: true },
        );
      }
      try {
        const round = await withTimeout(this.roundAfterNow(), remaining, 'ListOffsets round', () => {});
        const missing = want.filter((p) => !round.has(p));
        if (missing.length === 0) return round;
        lastError = `the leader of partition ${missing.join(', ')} did not answer`;
        await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))));
      } catch (e) {
        lastError = (e as Error).message;
        await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  /** The next round that starts after this call; shared by everyone who asks before it starts. */
  private roundAfterNow(): Promise<Map<number, PartitionView>> {
    if (!this.nextRound) {
      const after = this.round ?? Promise.resolve(new Map());
      this.nextRound = after
        .catch(() => new Map())
        .then(() => {
          this.nextRound = undefined;
          this.round = this.refresh();
          return this.round;
        });
    }
    return this.nextRound;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hw?.close();
    clearTimeout(this.timer);
    await this.admin?.disconnect().catch(() => {});
  }

  private keepLogStarts(offsets: Array<{ partition: number; low: string }>): void {
    for (const [p, low] of logStartsOf(offsets)) this.logStarts.set(p, low);
  }

  /**
   * With raw high watermarks: reads log start offsets on the side (kafkajs's fetchTopicOffsets: its
   * `low`), at most every logStartRefreshMs and one read at a time, given up after
   * max(1 s, logStartRefreshMs). The round does not wait for it; the answer is patched into the current
   * view. A failure keeps the last known values.
   */
  private refreshLogStarts(): void {
    const admin = this.admin;
    const now = Date.now();
    if (!admin || this.closed || this.logStartInFlight || now - this.logStartAt < this.logStartRefreshMs)
      return;
    this.logStartInFlight = true;
    this.logStartAt = now;
    void withTimeout(
      admin.fetchTopicOffsets(this.topic),
      Math.max(1000, this.logStartRefreshMs),
      'log start offsets',
      () => {},
    )
      .then((offsets) => {
        if (this.closed) return;
        this.keepLogStarts(offsets);
        this.view = {
          ...this.view,
          partitions: this.view.partitions.map((p) =>
            p ? { ...p, logStartOffset: this.logStarts.get(p.partition) ?? p.logStartOffset } : p,
          ),
        };
      })
      .catch(() => {
        // keep the last known log starts; the next round after logStartRefreshMs tries again
      })
      .finally(() => {
        this.logStartInFlight = false;
      });
  }

  /**
   * End offsets (high watermarks) of the partitions whose leader answered, asked of each leader on its own (see
   * log/high-watermarks). Throws only if no leader answered. Without a raw connection (SASL), kafkajs's
   * ListOffsets, which returns the last stable offset: the same as the high watermark unless a batch
   * transaction is open.
   */
  private async endOffsets(
    parts: Array<{ partition: number; leader: number }>,
    addresses: Map<number, string>,
  ): Promise<Map<number, number>> {
    if (!this.hw) {
      const offsets = await this.admin!.fetchTopicOffsets(this.topic);
      // The same answer carries the log start offsets (`low`).
      this.keepLogStarts(offsets);
      return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
    }
    const byLeader = new Map<number, number[]>();
    for (const p of parts) {
      if (p.leader < 0) continue;
      byLeader.set(p.leader, [...(byLeader.get(p.leader) ?? []), p.partition]);
    }
    const end = new Map<number, number>();
    let lastError = 'no partition has a leader';
    await Promise.all(
      [...byLeader].map(async ([leader, ps]) => {
        const address = addresses.get(leader);
        if (address === undefined) return;
        try {
          for (const [p, a] of await this.hw!.fetch(address, this.topic, ps)) {
            if ('offset' in a) end.set(p, a.offset);
            else lastError = a.error;
          }
        } catch (e) {
          lastError = (e as Error).message;
        }
      }),
    );
    if (end.size === 0 && parts.length > 0) throw new Error(lastError);
    return end;
  }

  private async refresh(): Promise<Map<number, PartitionView>> {
    const sentAt = Date.now();
    this.lastRoundAt = sentAt;
    try {
      if (!this.admin) {
        const admin = this.kafka.admin({ retry: { retries: 0 } });
        await admin.connect();
        this.admin = admin;
      }
      const [meta, cluster] = await Promise.all([
        this.admin.fetchTopicMetadata({ topics: [this.topic] }),
        this.admin.describeCluster(),
      ]);
      this.tcpReachable = true;
      this.brokerAddresses = cluster.brokers.map((b) => `${b.host}:${b.port}`);
      const metaPartitions = meta.topics[0]?.partitions ?? [];
      const end = await this.endOffsets(
        metaPartitions.map((p) => ({ partition: p.partitionId, leader: p.leader })),
        new Map(cluster.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`])),
      );
      if (this.hw) this.refreshLogStarts();
      const partitions: PartitionView[] = [];
      for (const p of metaPartitions) {
        const before = this.view.partitions[p.partitionId];
        const fresh = end.get(p.partitionId);
        partitions[p.partitionId] = {
          partition: p.partitionId,
          leader: p.leader,
          isr: p.isr,
          // A partition whose leader did not answer keeps its last end offset and the time it was read.
          endOffset: fresh ?? before?.endOffset ?? 0,
          logStartOffset: this.logStarts.get(p.partitionId) ?? before?.logStartOffset ?? 0,
          observedAt: fresh !== undefined ? sentAt : (before?.observedAt ?? 0),
        };
      }
      this.view = {
        reachable: true,
        brokers: cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b),
        lastOkAt: Date.now(),
        lastError: undefined,
        partitions,
      };
      this.onRefresh?.(this.view);
      return new Map(partitions.filter((p) => end.has(p.partition)).map((p) => [p.partition, p]));
    } catch (e) {
      const msg = (e as Error).message;
      // Brokers that answer "unknown topic" are reachable, but nothing can be written until the topic exists.
      const why = /does not host this topic-partition/i.test(msg)
        ? `topic '${this.topic}' does not exist yet`
        : msg;
      // A broken admin connection is rebuilt on the next round.
      const admin = this.admin;
      this.admin = undefined;
      await admin?.disconnect().catch(() => {});
      // One failed round is not "Kafka down": ask every known broker whether it is there at all.
      this.tcpReachable = await anyMayAccept([...new Set([...this.bootstrap, ...this.brokerAddresses])]);
      this.view = { ...this.view, reachable: this.reachable(), lastError: why };
      throw new LagoonError('kafka_unavailable', `Kafka unreachable: ${(e as Error).message}`, {
        status: 503,
        retryable: true,
        cause: e,
      });
    }
  }
}

/**
 * False only if every `host:port` refuses a TCP connection (all probed at once). A probe that neither
 * connects nor fails within `timeoutMs` proves nothing — on a starved event loop the timer can fire
 * before an accepted connection is seen — so it counts as "may accept": writes are then tried and wait
 * to their deadline rather than being refused as definitely impossible.
 */
async function anyMayAccept(addresses: string[], timeoutMs = 1000): Promise<boolean> {
  if (addresses.length === 0) return false;
  const probes = addresses.map(
    (a) =>
      new Promise<boolean>((resolve) => {
        const i = a.lastIndexOf(':');
        const socket = net.connect({ host: a.slice(0, i), port: Number(a.slice(i + 1)) });
        const done = (ok: boolean) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(ok);
        };
        const timer = setTimeout(() => done(true), timeoutMs);
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      }),
  );
  return (await Promise.all(probes)).some(Boolean);
}
