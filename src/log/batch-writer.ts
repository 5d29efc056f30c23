import type { Kafka, Producer } from 'kafkajs';
import { LagoonError } from '../errors.js';
import { withTimeout } from './kafka-wire.js';
import { describeKafkaError, type GateRefusal } from './writer.js';

/** One part record of a batch, ready to produce. */
export interface PartRecord {
  partition: number;
  key: Buffer;
  value: Buffer;
}

export interface BatchWriterOptions {
  topic: string;
  /**
   * Stable per node (`lagoon-<node id>-batch`): a restarted node's producer takes the same id, which fences its
   * predecessor and makes the coordinator abort any transaction that predecessor left open.
   */
  transactionalId: string;
  /** Why a partition cannot take writes now (the node's write gate), or undefined. */
  gate?: (partition: number) => GateRefusal | undefined;
  /**
   * How long the coordinator lets a transaction stay open before aborting it (transaction.timeout.ms). While a
   * transaction is open, read-committed consumers cannot pass it on its partitions, so a node that dies
   * mid-transaction and does not come back holds every replica's partitions for about this long.
   */
  transactionTimeoutMs?: number;
  /** Test only (LAGOON_TEST_BREAK=batch-dies-before-commit): SIGKILL this process between append and commit. */
  testDieBeforeCommit?: boolean;
}

/** Where each part landed. */
export interface BatchAck {
  parts: Array<{ partition: number; offset: number; timestamp: number }>;
}

/**
 * Writes atomic batches: each batch is one Kafka transaction of one record per partition, committed whole or
 * aborted whole (acks=all, idempotent, one transactional producer per node, one transaction at a time).
 *
 * Outcomes, as for single writes: a failure before the commit was sent is definite — an open transaction can
 * only be committed by this producer, and a failed one is aborted (by us, by the coordinator's timeout, or by
 * the next initialisation under the same transactional id), so none of it ever becomes visible (503). A commit
 * that was sent but not acknowledged is unknown (504): the coordinator may have logged the decision.
 */
export class BatchWriter {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private closed = false;
  /** The last transaction's work, settled (and its producer dropped if it failed). */
  private settling: Promise<void> = Promise.resolve();

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: BatchWriterOptions,
  ) {}

  /** Appends a batch's parts in one transaction and commits it; resolves with each part's offset. */
  write(parts: readonly PartRecord[], deadline: number, maxQueued = 100): Promise<BatchAck> {
    if (this.closed) {
      return Promise.reject(
        new LagoonError('shutting_down', 'Node is shutting down', { status: 503, retryable: true }),
      );
    }
    for (const p of parts) {
      const refusal = this.opts.gate?.(p.partition);
      if (refusal !== undefined) {
        return Promise.reject(
          new LagoonError(refusal.code, `The batch was not applied: ${refusal.reason}`, {
            status: 503,
            retryable: true,
            definite: true,
          }),
        );
      }
    }
    if (this.queued >= maxQueued) {
      return Promise.reject(
        new LagoonError(
          'overloaded',
          `This node already has ${this.queued} batches waiting; the batch was not applied.`,
          {
            status: 503,
            retryable: true,
            definite: true,
          },
        ),
      );
    }
    this.queued++;
    const run = this.chain.then(() => this.transact(parts, deadline));
    // The next batch starts only once this one's transaction has settled, even if its caller was answered at
    // the deadline: one transaction at a time per producer.
    this.chain = run.catch(() => {}).then(() => this.settling);
    return run.finally(() => this.queued--);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    await this.reset();
  }

  private async connected(deadline: number): Promise<Producer> {
    if (this.producer) return this.producer;
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        transactionalId: this.opts.transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: this.opts.transactionTimeoutMs ?? 10_000,
        allowAutoTopicCreation: false,
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      try {
        await producer.connect();
      } catch (e) {
        await producer.disconnect().catch(() => {});
        throw e;
      }
      this.producer = producer;
      return producer;
    })().finally(() => {
      this.connecting = undefined;
    });
    // A timeout here is a plain Error, which transact turns into a definite failure.
    return withTimeout(
      this.connecting,
      Math.max(0, deadline - Date.now()),
      'connecting the batch producer',
      () => {},
    );
  }

  /** Drops the producer after any failure: the next batch initialises a fresh one (fencing and aborting). */
  private async reset(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    await p?.disconnect().catch(() => {});
  }

  private async transact(parts: readonly PartRecord[], deadline: number): Promise<BatchAck> {
    if (Date.now() >= deadline) throw definite('its deadline passed while it waited for earlier batches');
    let producer: Producer;
    try {
      producer = await this.connected(deadline);
    } catch (e) {
      throw e instanceof LagoonError ? e : definite(describeKafkaError(e));
    }
    let committing = false;
    const attempt = (async () => {
      const tx = await producer.transaction();
      try {
        const timestamp = Date.now();
        const sent = await tx.send({
          topic: this.opts.topic,
          acks: -1,
          messages: parts.map((p) => ({
            partition: p.partition,
            key: p.key,
            value: p.value,
            timestamp: String(timestamp),
          })),
        });
        // Parts carry the batch deadline; every replica rejects a batch whose part was stamped after it.
        if (Date.now() >= deadline || timestamp > deadline)
          throw new Error('deadline passed before the commit');
        const offsets = new Map(sent.map((m) => [m.partition, Number(m.baseOffset)]));
        if (this.opts.testDieBeforeCommit) process.kill(process.pid, 'SIGKILL');
        committing = true;
        await tx.commit();
        return {
          parts: parts.map((p) => ({ partition: p.partition, offset: offsets.get(p.partition)!, timestamp })),
        };
      } catch (e) {
        if (!committing) await tx.abort().catch(() => {});
        throw e;
      }
    })();
    this.settling = attempt.then(
      () => {},
      () => this.reset(),
    );
    try {
      // The attempt stops itself at the deadline unless it is committing; past it plus a margin, the caller is
      // answered by what the attempt was doing (below): unknown while committing, else definite.
      return await withTimeout(
        attempt,
        Math.max(0, deadline + 2000 - Date.now()),
        'the batch transaction',
        () => {},
      );
    } catch (e) {
      // The next batch starts on a fresh producer (see settling): it fences this one and aborts what is open.
      if (e instanceof LagoonError) throw e;
      throw committing ? unknown(describeKafkaError(e)) : definite(describeKafkaError(e));
    }
  }
}

function definite(why: string): LagoonError {
  return new LagoonError(
    'kafka_unavailable',
    `The batch was not applied: ${why}. Nothing of it is visible; retry.`,
    {
      status: 503,
      retryable: true,
      definite: true,
    },
  );
}

function unknown(why: string): LagoonError {
  return new LagoonError(
    'write_outcome_unknown',
    `The batch may or may not have been applied: ${why}. GET /v1/batches/{id} tells once it is decided.`,
    { status: 504, retryable: true },
  );
}
