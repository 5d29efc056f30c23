import type { Consumer, Kafka } from 'kafkajs';
import type { LogRecord, ReplicaStore } from '../store/replica-store.js';

export type ReplicaState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface ReplicaOptions {
  topic: string;
  /** One consumer group per replica, so each replica receives every partition (the whole store). */
  groupId: string;
  /** Called after each committed batch with the partition's new applied offset. */
  onApplied?: (partition: number, appliedOffset: number, records: number, lastTimestamp: number) => void;
}

/**
 * The replica worker: consumes the Lagoon topic and applies each fetched batch into SQLite in one
 * transaction together with the partition's applied offset. It resumes from SQLite's offsets, never
 * from Kafka's; Kafka's committed offsets are written after apply only so standard lag tools see us.
 */
export class Replica {
  private readonly kafka: Kafka;
  private readonly store: ReplicaStore;
  private readonly opts: ReplicaOptions;
  private consumer: Consumer | undefined;
  private closing: Promise<void> | undefined;
  state: ReplicaState = 'idle';
  lastError: string | undefined;
  lastBatchAt = 0;

  constructor(kafka: Kafka, store: ReplicaStore, opts: ReplicaOptions) {
    this.kafka = kafka;
    this.store = store;
    this.opts = opts;
  }

  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;

  /** Joins the group and starts applying. Resolves once consuming started (Kafka must be reachable). */
  async start(): Promise<void> {
    this.state = 'starting';
    await this.runConsumer();
  }

  /**
   * kafkajs restarts its consumer by itself only after retriable errors; after any other error it
   * stops for good, which would leave this node serving ever staler reads. The replica is supervised
   * instead: a consumer that crashed without a restart is replaced, with backoff, resuming from SQLite.
   */
  private scheduleRestart(error: string): void {
    if (this.state === 'stopping' || this.state === 'stopped' || this.restartTimer) return;
    this.state = 'restarting';
    this.lastError = error;
    const delay = Math.min(10_000, 500 * 2 ** Math.min(this.restarts++, 5));
    this.restartTimer = setTimeout(async () => {
      this.restartTimer = undefined;
      const old = this.consumer;
      this.consumer = undefined;
      await old?.disconnect().catch(() => {});
      if (this.state !== 'restarting') return;
      try {
        await this.runConsumer();
      } catch (e) {
        this.scheduleRestart((e as Error).message);
      }
    }, delay);
  }

  private async runConsumer(): Promise<void> {
    await this.alignCommittedOffsets();
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.lastError = String(e.payload.error?.message ?? e.payload.error);
      process.stderr.write(
        `replica ${this.opts.groupId}: consumer crashed (${this.lastError}); ${e.payload.restart ? 'kafkajs restarts it' : 'restarting it'}\n`,
      );
      if (!e.payload.restart && this.consumer === consumer) this.scheduleRestart(this.lastError);
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      // Whatever Kafka's committed offsets say, resume exactly where SQLite says we are.
      for (const [partition, offset] of this.store.appliedOffsets()) {
        consumer.seek({ topic: this.opts.topic, partition, offset: String(offset) });
      }
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 500,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const records: LogRecord[] = batch.messages.map((m) => ({
          offset: Number(m.offset),
          timestamp: Number(m.timestamp),
          key: m.key,
          value: m.value,
        }));
        this.store.applyBatch(batch.partition, records);
        const last = records[records.length - 1]!;
        this.lastBatchAt = Date.now();
        this.opts.onApplied?.(batch.partition, last.offset + 1, records.length, last.timestamp);
        this.restarts = 0;
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    this.state = 'running';
  }

  status(): { state: ReplicaState; lastError: string | undefined; lastBatchAt: number } {
    return { state: this.state, lastError: this.lastError, lastBatchAt: this.lastBatchAt };
  }

  /** Idempotent, ordered: stop fetching, let the current batch commit, leave the group. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'stopping';
      clearTimeout(this.restartTimer);
      await this.consumer?.disconnect().catch(() => {});
      this.state = 'stopped';
    })();
    return this.closing;
  }

  /**
   * Before joining, set the group's committed offsets to SQLite's, so tools and a first fetch agree
   * with the store. Fails harmlessly when the group still has a member (a crashed predecessor whose
   * session has not expired); the seek on GROUP_JOIN covers that case.
   */
  private async alignCommittedOffsets(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      await admin.setOffsets({
        groupId: this.opts.groupId,
        topic: this.opts.topic,
        partitions: [...this.store.appliedOffsets()].map(([partition, offset]) => ({
          partition,
          offset: String(offset),
        })),
      });
    } catch {
      // see above
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}
