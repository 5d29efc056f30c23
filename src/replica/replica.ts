import type { Admin, Consumer, Kafka } from 'kafkajs';
import { txTagOf } from '../core/batch.js';
import { deletedRange } from '../core/lag-status.js';
import { identityProblem, misroutedKey } from '../core/topic-safety.js';
import { TxSequencer } from '../core/tx-sequencer.js';
import { fetchLogStarts, fetchTopicIdentity, type RawEndpoint } from '../log/topic.js';
import type { LogRecord, ReplicaStore } from '../store/replica-store.js';

export type ReplicaState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

/**
 * How often a replica writes its applied offsets to its consumer group (Kafka's committed offsets, which other
 * nodes, lag tools and dashboards read). kafkajs's autoCommit sends an OffsetCommit after every batch of every
 * fetch, whatever its autoCommitInterval says — under load as many requests as the writers' produce requests,
 * each a replicated append to __consumer_offsets — so the replica commits on this clock instead.
 */
export const COMMIT_INTERVAL_MS = 500;

/** Least time between two apply transactions (group commit, see Replica.scheduleApply). */
export const APPLY_SPACING_MS = 20;

export interface ReplicaOptions {
  topic: string;
  /** One consumer group per replica, so each replica receives every partition (the whole store). */
  groupId: string;
  /** Called after each committed batch with the partition's new applied offset. */
  onApplied?: (partition: number, appliedOffset: number, records: number, lastTimestamp: number) => void;
  /** How to read the topic id with a raw request; without it only the cluster id identifies the log. */
  rawEndpoint?: RawEndpoint;
  /** How often a running replica re-checks that the log is still the one its store was built from. */
  identityCheckMs?: number;
  /** One structured line per state change; stderr JSON by default. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /**
   * Called when a partition's next records were deleted by retention before this replica applied them (a GAP):
   * the partition is paused, nothing of it is applied, until the store is rebuilt from a snapshot.
   */
  onGap?: (gap: PartitionGap) => void;
  /** Test only (a slow disk): wait this long before applying each batch. */
  testApplyDelayMs?: number;
  /** Test only, deliberately broken: the 'apply-offsets-first' break of src/testing/breaks.ts. */
  testApplyOffsetsFirst?: boolean;
}

/** Why a replica stopped for good: a stable code and a sentence that says the way out. */
export interface ReplicaProblem {
  /** `topic_identity_mismatch` (another topic or cluster) or `replica_diverged` (the log is behind the store). */
  code: 'topic_identity_mismatch' | 'replica_diverged';
  message: string;
}

/** Records a replica needed that the log no longer has: offsets [from, logStart) were deleted by retention. */
export interface PartitionGap {
  partition: number;
  /** The next offset this replica had to apply. */
  from: number;
  /** The log's first offset when the gap was found. */
  logStart: number;
  at: number;
}

/** A snapshot for /v1/status and /readyz. */
export interface ReplicaStatus {
  state: ReplicaState;
  lastError: string | undefined;
  lastBatchAt: number;
  /** Set once the replica refused the log; it then applies nothing until restarted with a fit store. */
  problem: ReplicaProblem | undefined;
  /** Records whose key does not belong to the partition they were found in; neutralised, never applied. */
  misrouted: { count: number; last: string | undefined };
}

/**
 * The replica worker: consumes the Lagoon topic and applies each fetched batch into SQLite in one
 * transaction together with the partition's applied offset. It resumes from SQLite's offsets, never
 * from Kafka's; Kafka's committed offsets are SQLite's applied offsets, written every COMMIT_INTERVAL_MS only so
 * that other nodes and standard lag tools see where this replica stands.
 */
export class Replica {
  private readonly kafka: Kafka;
  private readonly store: ReplicaStore;
  private readonly opts: ReplicaOptions;
  private consumer: Consumer | undefined;
  private closing: Promise<void> | undefined;
  private admin: Admin | undefined;
  private identityTimer: NodeJS.Timeout | undefined;
  private readonly log: (event: string, fields: Record<string, unknown>) => void;
  state: ReplicaState = 'idle';
  lastError: string | undefined;
  lastBatchAt = 0;
  /** When this replica's consumer last joined its group (ms; 0 before): readiness counts catching up from it. */
  joinedAt = 0;
  problem: ReplicaProblem | undefined;
  private readonly misrouted = { count: 0, last: undefined as string | undefined };
  /** Partitions paused at a gap (records deleted before they were applied): nothing of them is applied. */
  private readonly gapped = new Map<number, PartitionGap>();
  /** Next offset the consumer should hand over per partition: where it was seeked, then past each fetch. */
  private readonly position = new Map<number, number>();
  /** Holds a partition at an atomic batch's part until the batch is whole (core/tx-sequencer). */
  private readonly sequencer: TxSequencer<LogRecord>;

  constructor(kafka: Kafka, store: ReplicaStore, opts: ReplicaOptions) {
    this.kafka = kafka;
    this.store = store;
    this.opts = opts;
    this.sequencer = new TxSequencer<LogRecord>(
      store.partitions,
      (r) => txTagOf(r.value),
      (tx) => store.batchOutcome(tx) !== undefined,
    );
    this.sequencer.reset(store.appliedOffsets());
    this.log =
      opts.log ??
      ((event, fields) =>
        process.stderr.write(
          `${JSON.stringify({ time: Date.now(), component: 'replica', group: opts.groupId, event, ...fields })}\n`,
        ));
  }

  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;

  /** Joins the group and starts applying. Resolves once consuming started (Kafka must be reachable). */
  async start(): Promise<void> {
    if (this.state === 'failed') return;
    this.state = 'starting';
    await this.runConsumer();
  }

  /**
   * Stops for good: the log is not the one this store was built from, so neither applying nor serving its
   * data as current is sound. Kept until restart; the status and /readyz say why and what to do.
   */
  private fail(problem: ReplicaProblem): void {
    if (this.state === 'failed' || this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'failed';
    this.problem = problem;
    this.lastError = problem.message;
    clearTimeout(this.restartTimer);
    clearTimeout(this.identityTimer);
    this.log('replica_failed', { code: problem.code, reason: problem.message });
    const consumer = this.consumer;
    this.consumer = undefined;
    // Not awaited: fail() may run inside eachBatch, and disconnect waits for the running batch to end.
    setImmediate(() => void consumer?.disconnect().catch(() => {}));
  }

  private async connectedAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }

  /**
   * Is the log still the one this store applied? Binds the store to the topic on first contact; afterwards
   * refuses another topic id or cluster, and a log that ends below the store's applied offsets (a recreated
   * or wiped log: kafkajs would reset the out-of-range fetch to 0 and every record would be skipped as a
   * redelivery). Returns false once it failed the replica; throws when Kafka could not answer (inconclusive).
   */
  private async verifyLog(): Promise<boolean> {
    const admin = await this.connectedAdmin();
    const actual = await fetchTopicIdentity(
      admin,
      this.opts.topic,
      this.opts.rawEndpoint ?? {
        brokers: [],
        ssl: false,
        sasl: true,
      },
    );
    const stored = this.store.topicIdentity();
    if (stored) {
      const why = identityProblem(stored, actual);
      if (why !== undefined) {
        this.fail({ code: 'topic_identity_mismatch', message: why });
        return false;
      }
    }
    const applied = this.store.appliedOffsets();
    for (const o of await admin.fetchTopicOffsets(this.opts.topic)) {
      const mine = applied.get(o.partition) ?? 0;
      // The high watermark never goes back in one log (acks=all, unclean election off), so a log that ends
      // below what this store applied is another log, whatever its name and ids say.
      if (Number(o.high) < mine) {
        this.fail({
          code: 'replica_diverged',
          message:
            `partition ${o.partition} of topic '${this.opts.topic}' ends at offset ${o.high}, but this store has ` +
            `applied up to ${mine}: the log is not the one this store was built from (topic recreated, Kafka data ` +
            'wiped, or another cluster). Way out: start the node with a new --db (the replica rebuilds from ' +
            'the log), or bootstrap it from a snapshot of this topic',
        });
        return false;
      }
    }
    if (!stored || (stored.topicId === null && actual.topicId !== null)) {
      this.store.bindTopicIdentity(actual);
      this.log('topic_bound', { ...actual, storeHadData: [...applied.values()].some((o) => o > 0) });
    }
    return true;
  }

  /** Re-checks the log's identity while running, so a topic recreated under a live replica is caught. */
  private scheduleIdentityCheck(): void {
    clearTimeout(this.identityTimer);
    const every = this.opts.identityCheckMs ?? 5000;
    if (every <= 0) return;
    this.identityTimer = setTimeout(async () => {
      if (this.state !== 'running' && this.state !== 'restarting') return;
      try {
        await this.verifyLog();
      } catch {
        // inconclusive (topic missing for a moment, brokers down): try again next round
      }
      if (this.state === 'running' || this.state === 'restarting') this.scheduleIdentityCheck();
    }, every);
    this.identityTimer.unref();
  }

  /**
   * kafkajs restarts its consumer by itself only after retriable errors; after any other error it
   * stops for good, which would leave this node serving ever staler reads. The replica is supervised
   * instead: a consumer that crashed without a restart is replaced, with backoff, resuming from SQLite.
   */
  private scheduleRestart(error: string): void {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'failed' || this.restartTimer)
      return;
    this.state = 'restarting';
    this.lastError = error;
    const delay = Math.min(10_000, 500 * 2 ** Math.min(this.restarts++, 5));
    this.log('consumer_restarting', { error, inMs: delay, attempt: this.restarts });
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
    if (!(await this.verifyLog())) return;
    await this.alignCommittedOffsets();
    const consumer = this.kafka.consumer({
      groupId: this.opts.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      // Kafka's own default (fetch.max.wait.ms): a fetch returns as soon as a record arrives, so this bounds only
      // how often an idle replica asks. At 100 ms three idle nodes kept the brokers ~30% of a core busy.
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      this.lastError = String(e.payload.error?.message ?? e.payload.error);
      this.log('consumer_crashed', {
        error: this.lastError,
        restart: e.payload.restart ? 'kafkajs restarts it' : 'the replica restarts it',
      });
      if (!e.payload.restart && this.consumer === consumer) this.scheduleRestart(this.lastError);
    });
    consumer.on(consumer.events.GROUP_JOIN, () => {
      // Whatever Kafka's committed offsets say, resume exactly where SQLite says we are; what the sequencer
      // held is fetched again.
      const applied = this.store.appliedOffsets();
      this.sequencer.reset(applied);
      this.joinedAt = Date.now();
      this.log('group_joined', { resumeFrom: Object.fromEntries(applied) });
      for (const [partition, offset] of applied) {
        this.position.set(partition, offset);
        if (this.gapped.has(partition)) continue;
        consumer.seek({ topic: this.opts.topic, partition, offset: String(offset) });
      }
      const paused = [...this.gapped.keys()];
      if (paused.length > 0) consumer.pause([{ topic: this.opts.topic, partitions: paused }]);
    });
    consumer.on(consumer.events.REBALANCING, () =>
      this.log('group_rebalancing', { group: this.opts.groupId }),
    );
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      // A fetch of nothing but transaction markers or aborted records never reaches eachBatch: the applied
      // offset must still move past them, or the replica would never catch up with the log's end.
      if (e.payload.batchSize !== 0 || this.consumer !== consumer || this.state === 'failed') return;
      const p = e.payload.partition;
      // A fetch that starts past where this partition stands skipped records: never move past them unseen.
      if (this.gapped.has(p) || Number(e.payload.firstOffset ?? -1) > (this.position.get(p) ?? 0)) return;
      this.position.set(p, Number(e.payload.lastOffset) + 1);
      this.sequencer.push(p, [], Number(e.payload.lastOffset) + 1);
      this.scheduleApply();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await consumer.run({
      // Committed on a clock (commitLoop), from SQLite: never ahead of what is applied, at most 2 requests/s.
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0 || this.state === 'failed') return;
        const applied = this.store.appliedOffsets().get(batch.partition) ?? 0;
        // A batch from below the applied offset is a redelivery (stale committed offsets on a rejoin) or an
        // out-of-range reset that kafkajs followed silently into another log; a high watermark below it can
        // only be another log. Ask Kafka before going on: never follow a reset silently.
        if (Number(batch.firstOffset()) < applied || Number(batch.highWatermark) < applied) {
          if (!(await this.verifyLog())) return;
        }
        if (this.gapped.has(batch.partition)) return;
        // A fetch that starts past where the partition stands: kafkajs followed an out-of-range answer to the
        // log's start. If retention deleted what lies between, applying on would build a partial store silently.
        const expected = this.position.get(batch.partition) ?? applied;
        if (
          Number(batch.firstOffset()) > expected &&
          (await this.foundGap(consumer, batch.partition, expected))
        )
          return;
        const records: LogRecord[] = batch.messages.map((m) => {
          const offset = Number(m.offset);
          const misrouted = misroutedKey(m.key, batch.partition, this.store.partitions);
          if (misrouted !== undefined && offset >= applied) {
            this.misrouted.count++;
            this.misrouted.last = `partition ${batch.partition} offset ${offset}: ${misrouted}`;
            this.log('record_misrouted', { partition: batch.partition, offset, reason: misrouted });
          }
          // A record in the wrong partition was written by a node that routes keys differently: applying it
          // would break per-key order. A null value makes it a deterministic rejection (invalid_record) on
          // every replica, recorded in the writes table, never applied.
          return {
            offset,
            timestamp: Number(m.timestamp),
            key: m.key,
            value: misrouted === undefined ? m.value : null,
          };
        });
        this.position.set(batch.partition, Number(batch.lastOffset()) + 1);
        if (this.opts.testApplyDelayMs) await sleep(this.opts.testApplyDelayMs);
        if (this.opts.testApplyOffsetsFirst) {
          // Deliberately broken (test only): the offset in one transaction, the rows in a later one.
          const last = records[records.length - 1]!;
          this.store.advanceOffsetOnlyForTestBreak(batch.partition, last.offset + 1);
          await sleep(100);
          this.store.applyBatch(batch.partition, records, { fromOffset: applied });
          this.lastBatchAt = Date.now();
          this.opts.onApplied?.(batch.partition, last.offset + 1, records.length, last.timestamp);
        } else {
          // Past the last record kafkajs handed over: filtered transaction markers and aborted records count.
          this.sequencer.push(batch.partition, records, Number(batch.lastOffset()) + 1);
          this.scheduleApply();
        }
        this.restarts = 0;
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    if (this.state === 'failed') return;
    const was = this.state;
    this.state = 'running';
    this.log(was === 'restarting' ? 'consumer_restarted' : 'consumer_started', { group: this.opts.groupId });
    this.scheduleIdentityCheck();
    this.commitLoop(consumer);
  }

  /** Offsets last committed by the current consumer, and whether a commit is on its way. */
  private committed = new Map<number, number>();
  private commitInFlight: Promise<void> | undefined;

  /**
   * Commits the partitions whose applied offset (SQLite) moved since the last commit, one request at a time;
   * a failed commit (a rebalance, the coordinator moving) is simply repeated at the next tick. Offsets are read
   * afresh for each commit, so what Kafka holds never goes back and never runs ahead of the store.
   */
  private commitApplied(consumer: Consumer): Promise<void> {
    if (this.commitInFlight !== undefined || this.consumer !== consumer || this.state !== 'running') {
      return this.commitInFlight ?? Promise.resolve();
    }
    const changed = [...this.store.appliedOffsets()].filter(([p, o]) => this.committed.get(p) !== o);
    if (changed.length === 0) return Promise.resolve();
    this.commitInFlight = consumer
      .commitOffsets(
        changed.map(([partition, offset]) => ({ topic: this.opts.topic, partition, offset: String(offset) })),
      )
      .then(() => {
        if (this.consumer === consumer) for (const [p, o] of changed) this.committed.set(p, o);
      })
      .catch(() => {})
      .finally(() => {
        this.commitInFlight = undefined;
      });
    return this.commitInFlight;
  }

  private commitLoop(consumer: Consumer): void {
    this.committed = new Map();
    const timer = setInterval(() => {
      if (
        this.consumer !== consumer ||
        this.state === 'stopping' ||
        this.state === 'stopped' ||
        this.state === 'failed'
      ) {
        clearInterval(timer);
        return;
      }
      void this.commitApplied(consumer);
    }, COMMIT_INTERVAL_MS);
    timer.unref();
  }

  /**
   * Applies soon, once for everything pushed meanwhile: kafkajs hands over one fetch as one batch per partition,
   * one after another in the same turn of the event loop, so the whole fetch becomes ONE SQLite transaction —
   * one fsync (synchronous=FULL) instead of one per partition, and the event loop blocked once. Safe to defer:
   * SQLite is the truth on restart (GROUP_JOIN resets the sequencer to it), and what waits is only in memory.
   *
   * Group commit: under load, transactions are at least APPLY_SPACING_MS apart, so one fsync covers every fetch
   * that arrived meanwhile (a node's CPU profile under write load spent 4× as long committing as applying, one
   * commit per fetch). An idle replica applies at once: the spacing only counts from the previous transaction.
   */
  private scheduleApply(): void {
    if (this.applyPending !== undefined) return;
    const run = () => {
      this.applyPending = undefined;
      if (this.state === 'failed' || this.state === 'stopped') return;
      try {
        this.applyReleased();
      } catch (e) {
        // As a throw inside eachBatch did before: the consumer is replaced and resumes from SQLite.
        const error = (e as Error).message ?? String(e);
        this.log('apply_failed', { error });
        const consumer = this.consumer;
        this.consumer = undefined;
        void consumer?.disconnect().catch(() => {});
        this.scheduleRestart(error);
      }
    };
    const wait = this.lastApplyAt + APPLY_SPACING_MS - performance.now();
    if (wait <= 0) {
      const h = setImmediate(run);
      this.applyPending = { cancel: () => clearImmediate(h) };
    } else {
      const h = setTimeout(run, wait);
      this.applyPending = { cancel: () => clearTimeout(h) };
    }
  }

  private applyPending: { cancel(): void } | undefined;
  /** When the last apply transaction ended (performance.now()). */
  private lastApplyAt = Number.NEGATIVE_INFINITY;

  /**
   * Applies what the sequencer releases (plain records, whole batches) in one SQLite transaction, then reports
   * each partition that moved. Records of a partition held at a batch part wait in the sequencer.
   */
  private applyReleased(): void {
    const steps = this.sequencer.drain();
    if (steps.length === 0) return;
    const moved = this.store.applySteps(steps);
    this.lastApplyAt = performance.now();
    this.lastBatchAt = Date.now();
    for (const m of moved) this.opts.onApplied?.(m.partition, m.appliedOffset, m.records, m.lastTimestamp);
  }

  /**
   * Is there a gap before `expected` on partition `p`? Asks Kafka for the log's start offset: above `expected`,
   * records this replica never applied were deleted. The partition is then paused and reported (onGap); it
   * applies nothing more until the store is rebuilt. Throws (the batch is fetched again) if Kafka cannot say.
   */
  private async foundGap(consumer: Consumer, p: number, expected: number): Promise<boolean> {
    const logStart = (await fetchLogStarts(await this.connectedAdmin(), this.opts.topic)).get(p) ?? 0;
    if (logStart <= expected) return false;
    consumer.pause([{ topic: this.opts.topic, partitions: [p] }]);
    const [gap] = this.markGaps([{ partition: p, from: expected, logStart }]);
    if (gap) this.opts.onGap?.(gap);
    return true;
  }

  /**
   * Marks partitions as gapped (never seeked, fetched or applied again by this replica) and logs each; returns the
   * new ones. The node calls it before the replica starts, for gaps it found by comparing the store with the log.
   */
  markGaps(gaps: ReadonlyArray<Omit<PartitionGap, 'at'>>): PartitionGap[] {
    const added: PartitionGap[] = [];
    for (const g of gaps) {
      if (this.gapped.has(g.partition)) continue;
      const gap = { ...g, at: Date.now() };
      this.gapped.set(g.partition, gap);
      added.push(gap);
      this.log('partition_gap', {
        partition: g.partition,
        from: g.from,
        logStart: g.logStart,
        reason: deletedRange(g.from, g.logStart),
      });
    }
    return added;
  }

  /** Partitions paused at a gap, if any. */
  gaps(): PartitionGap[] {
    return [...this.gapped.values()];
  }

  /** State, last error, why it stopped for good (if so), and misrouted records seen. */
  status(): ReplicaStatus {
    return {
      state: this.state,
      lastError: this.lastError,
      lastBatchAt: this.lastBatchAt,
      problem: this.problem,
      misrouted: { ...this.misrouted },
    };
  }

  /** Idempotent, ordered: stop fetching, let the current batch commit, leave the group. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const failed = this.state === 'failed';
      const consumer = this.consumer;
      // Where this replica stands, for the tools that read its group (bounded: a dead coordinator is not waited for).
      if (consumer !== undefined && !failed) {
        await Promise.race([this.commitApplied(consumer), new Promise((r) => setTimeout(r, 2000).unref())]);
      }
      this.state = 'stopping';
      clearTimeout(this.restartTimer);
      clearTimeout(this.identityTimer);
      await this.consumer?.disconnect().catch(() => {});
      // What the last fetch handed over is applied before the store closes (not needed for safety: a restart
      // fetches it again from SQLite's offsets).
      if (this.applyPending !== undefined) {
        this.applyPending.cancel();
        this.applyPending = undefined;
        if (!failed) {
          try {
            this.applyReleased();
          } catch {
            // fetched again on the next start
          }
        }
      }
      await this.admin?.disconnect().catch(() => {});
      // A failed replica stays failed in its status until the process ends: the reason must stay visible.
      this.state = failed ? 'failed' : 'stopped';
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
