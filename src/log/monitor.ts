import type { Admin, Kafka } from 'kafkajs';
import { LagoonError } from '../errors.js';

/** What the node last learned about one partition of the Lagoon topic. */
export interface PartitionView {
  partition: number;
  leader: number;
  isr: number[];
  /** High watermark: the next offset to be written (committed records end here). */
  endOffset: number;
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

/**
 * Watches the Lagoon topic from one node: leaders, ISR and end offsets, refreshed on an interval.
 * Feeds the write circuit breaker, lag and staleness; and answers strong reads with an end offset
 * read *after* the read began (a fresh ListOffsets round, shared by reads that arrive together).
 */
export class ClusterMonitor {
  private readonly kafka: Kafka;
  private readonly topic: string;
  private readonly minIsr: number;
  private readonly intervalMs: number;
  private readonly onRefresh: ((view: ClusterView) => void) | undefined;
  private admin: Admin | undefined;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<Map<number, PartitionView>> | undefined;
  private nextRound: Promise<Map<number, PartitionView>> | undefined;
  private closed = false;
  private lastRoundAt = 0;
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
      onRefresh?: (view: ClusterView) => void;
    },
  ) {
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
    // Unreachable if nothing succeeded for a few intervals, even if the last request has not failed yet.
    const fresh = Date.now() - this.view.lastOkAt < Math.max(3000, this.intervalMs * 4);
    return { ...this.view, reachable: this.view.reachable && fresh };
  }

  partition(p: number): PartitionView | undefined {
    return this.view.partitions[p];
  }

  /** Why `partition` cannot take an acks=all write now, or undefined if it can. */
  writeGate(partition: number): string | undefined {
    const v = this.snapshot();
    if (!v.reachable)
      return v.lastError?.startsWith('topic ')
        ? v.lastError
        : `no Kafka broker reachable${v.lastError ? `: ${v.lastError}` : ''}`;
    const p = v.partitions[partition];
    if (!p) return undefined; // no metadata yet: let the producer try
    if (p.leader < 0) return `partition ${partition} has no leader`;
    if (p.isr.length < this.minIsr) {
      return `partition ${partition} has ${p.isr.length} in-sync replica(s), min.insync.replicas is ${this.minIsr}`;
    }
    return undefined;
  }

  /**
   * End offsets from a ListOffsets round that starts after this call (linearizable reads need an
   * offset read after the read began). Concurrent callers share the next round.
   */
  async freshEndOffsets(timeoutMs: number): Promise<Map<number, PartitionView>> {
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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LagoonError('kafka_unavailable', 'Could not read the latest offset from Kafka in time', {
              status: 503,
              retryable: true,
            }),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.nextRound ?? this.round!, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.admin?.disconnect().catch(() => {});
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
      const [meta, offsets, cluster] = await Promise.all([
        this.admin.fetchTopicMetadata({ topics: [this.topic] }),
        this.admin.fetchTopicOffsets(this.topic),
        this.admin.describeCluster(),
      ]);
      const end = new Map(offsets.map((o) => [o.partition, Number(o.high)]));
      const partitions: PartitionView[] = [];
      for (const p of meta.topics[0]?.partitions ?? []) {
        partitions[p.partitionId] = {
          partition: p.partitionId,
          leader: p.leader,
          isr: p.isr,
          endOffset: end.get(p.partitionId) ?? 0,
          observedAt: sentAt,
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
      return new Map(partitions.map((p) => [p.partition, p]));
    } catch (e) {
      const msg = (e as Error).message;
      // Brokers that answer "unknown topic" are reachable, but nothing can be written until the topic exists.
      const why = /does not host this topic-partition/i.test(msg)
        ? `topic '${this.topic}' does not exist yet`
        : msg;
      this.view = { ...this.view, reachable: false, lastError: why };
      // A broken admin connection is rebuilt on the next round.
      const admin = this.admin;
      this.admin = undefined;
      await admin?.disconnect().catch(() => {});
      throw new LagoonError('kafka_unavailable', `Kafka unreachable: ${(e as Error).message}`, {
        status: 503,
        retryable: true,
        cause: e,
      });
    }
  }
}
