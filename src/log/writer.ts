import type { Kafka, Message, Producer } from 'kafkajs';
import { LagoonError } from '../errors.js';
import { stallGuardedSockets } from './stall-guard.js';

/** Where a write landed in the log. */
export interface WriteAck {
  partition: number;
  offset: number;
  /** The record's log time (ms): the broker's append time on a LogAppendTime topic, else the producer's. */
  timestamp: number;
}

interface Pending {
  key: Buffer | null;
  value: Buffer;
  partition: number;
  deadline: number;
  timestamp: number;
  /** Handed to Kafka at least once: from then on a failure is "outcome unknown", never definite. */
  sent: boolean;
  settled: boolean;
  resolve: (ack: WriteAck) => void;
  reject: (err: LagoonError) => void;
  timer: NodeJS.Timeout;
}

/** One partition's queue and producer: partitions never wait for each other. */
interface Lane {
  partition: number;
  queue: Pending[];
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
  producer: Producer | undefined;
  connecting: Promise<Producer> | undefined;
}

export interface WriterOptions {
  topic: string;
  lingerMs: number;
  /** Largest number of records in one produce request. */
  maxBatch?: number;
  /**
   * Largest produce request, in record bytes (keys + values). A record larger than this goes alone;
   * the topic's max.message.bytes must admit the largest record the API accepts (src/log/topic.ts).
   */
  maxBatchBytes?: number;
  /** Writes waiting across all partitions; beyond this a write is refused at once (503 overloaded). */
  maxQueued?: number;
  onBatch?: (records: number, ms: number, ok: boolean) => void;
  /**
   * Returns why `partition` cannot take acks=all writes now (no broker reachable, ISR below
   * min.insync.replicas, the topic unchecked or unsafe), or undefined. Gated records are never sent:
   * they fail definitely, with the refusal's code.
   */
  gate?: (partition: number) => GateRefusal | undefined;
  /** Test only, deliberately broken guarantees (src/testing/breaks.ts); never set by the product. */
  testBreaks?: { ackBeforeKafka?: boolean; unknownAsDefinite?: boolean };
}

export type WriterState = 'idle' | 'running' | 'closing' | 'closed';

/** Why a partition takes no writes now: a stable problem code and a sentence. */
export interface GateRefusal {
  code: 'kafka_unavailable' | 'topic_unsafe';
  reason: string;
}

/** Client-side bound on one produce attempt; the broker-side acks timeout is kept below it. */
const ATTEMPT_MS = 3000;

/**
 * The write path's producer. Each partition is a lane with its own idempotent producer (acks=all, one
 * request in flight), so a partition whose leader died never holds up the others. Concurrent appends
 * to a partition are coalesced into one request (a short linger, then whatever queued while the
 * previous request was in flight), and each caller still gets its own offset back.
 *
 * A partition between leaders is waited for, as Kafka's own producer does: the lane resends the SAME
 * batch with the same producer (the broker deduplicates by producer id and sequence, so a resend of a
 * batch that did land is answered with its original offsets) until the earliest deadline in the batch.
 * Only then does it give up, answer "outcome unknown" and replace the producer (new producer id), so no
 * later batch can reuse the sequence numbers of one that may have landed.
 *
 * Every append is bounded by its deadline. A record that was never handed to Kafka fails *definitely*
 * (503 kafka_unavailable: it did not happen); a record whose request was sent but not acknowledged in
 * time fails *indefinitely* (504 write_outcome_unknown: it may have happened).
 */
export class Writer {
  private readonly kafka: Kafka;
  private readonly opts: Required<Omit<WriterOptions, 'onBatch' | 'gate' | 'testBreaks'>> &
    Pick<WriterOptions, 'onBatch' | 'gate' | 'testBreaks'>;
  /** Last acknowledged offset per partition (only the 'ack-before-kafka' test break reads it). */
  private readonly lastAcked = new Map<number, number>();
  private readonly lanes = new Map<number, Lane>();
  private queued = 0;
  private closing: Promise<void> | undefined;
  private lastError: string | undefined;
  private lastOkAt = 0;
  state: WriterState = 'idle';

  constructor(kafka: Kafka, opts: WriterOptions) {
    this.kafka = kafka;
    this.opts = { maxBatch: 2000, maxBatchBytes: 900 * 1024, maxQueued: 50_000, ...opts };
  }

  start(): void {
    this.state = 'running';
  }

  /** Appends one record; resolves once Kafka acknowledged it with acks=all. */
  append(key: Buffer | null, value: Buffer, partition: number, timeoutMs: number): Promise<WriteAck> {
    if (this.state !== 'running') {
      return Promise.reject(
        new LagoonError('shutting_down', 'Node is shutting down', { status: 503, retryable: true }),
      );
    }
    if (this.queued >= this.opts.maxQueued) {
      return Promise.reject(
        new LagoonError(
          'overloaded',
          `This node already has ${this.queued} writes waiting for Kafka; the write was not applied.`,
          { status: 503, retryable: true, definite: true },
        ),
      );
    }
    if (this.opts.testBreaks?.ackBeforeKafka) {
      // Deliberately broken (test only): answered before Kafka acknowledged, at a guessed position.
      this.enqueue(key, value, partition, timeoutMs).catch(() => {});
      const offset = (this.lastAcked.get(partition) ?? -1) + 1;
      this.lastAcked.set(partition, offset);
      return Promise.resolve({ partition, offset, timestamp: Date.now() });
    }
    return this.enqueue(key, value, partition, timeoutMs);
  }

  private enqueue(
    key: Buffer | null,
    value: Buffer,
    partition: number,
    timeoutMs: number,
  ): Promise<WriteAck> {
    const lane = this.lane(partition);
    return new Promise<WriteAck>((resolve, reject) => {
      const now = Date.now();
      const p: Pending = {
        key,
        value,
        partition,
        deadline: now + timeoutMs,
        timestamp: now,
        sent: false,
        settled: false,
        resolve,
        reject,
        timer: setTimeout(() => this.expire(lane, p), timeoutMs),
      };
      lane.queue.push(p);
      this.queued++;
      this.schedule(lane);
    });
  }

  status(): { state: WriterState; queued: number; lastError: string | undefined; lastOkAt: number } {
    return { state: this.state, queued: this.queued, lastError: this.lastError, lastOkAt: this.lastOkAt };
  }

  /** Idempotent: stops taking writes, lets in-flight requests finish (bounded), fails what is still queued. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      for (const lane of this.lanes.values()) clearTimeout(lane.timer);
      const busy = () => [...this.lanes.values()].some((l) => l.busy);
      for (let i = 0; i < 100 && busy(); i++) await new Promise((r) => setTimeout(r, 50));
      for (const lane of this.lanes.values()) {
        for (const p of lane.queue.splice(0)) {
          this.settle(
            p,
            p.sent
              ? unknownOutcome('the node shut down before Kafka answered')
              : new LagoonError('shutting_down', 'Node is shutting down', { status: 503, retryable: true }),
          );
        }
      }
      await Promise.all([...this.lanes.values()].map((l) => l.producer?.disconnect().catch(() => {})));
      this.state = 'closed';
    })();
    return this.closing;
  }

  private lane(partition: number): Lane {
    let lane = this.lanes.get(partition);
    if (!lane) {
      lane = {
        partition,
        queue: [],
        busy: false,
        timer: undefined,
        producer: undefined,
        connecting: undefined,
      };
      this.lanes.set(partition, lane);
    }
    return lane;
  }

  private expire(lane: Lane, p: Pending): void {
    if (p.settled) return;
    if (!p.sent) {
      // Never handed to Kafka: definitely not written.
      const idx = lane.queue.indexOf(p);
      if (idx >= 0) lane.queue.splice(idx, 1);
      this.settle(p, unavailable(this.lastError ?? 'Kafka did not take it in time'));
    } else {
      this.settle(p, unknownOutcome('Kafka did not acknowledge the write in time'));
    }
  }

  private settle(p: Pending, result: WriteAck | LagoonError): void {
    if (p.settled) return;
    p.settled = true;
    this.queued--;
    clearTimeout(p.timer);
    if (result instanceof LagoonError) {
      // Deliberately broken (test only): a sent write's unknown outcome reported as a definite failure.
      if (this.opts.testBreaks?.unknownAsDefinite && result.code === 'write_outcome_unknown') {
        p.reject(unavailable(`(test break) ${result.message}`));
      } else p.reject(result);
    } else {
      this.lastAcked.set(
        result.partition,
        Math.max(result.offset, this.lastAcked.get(result.partition) ?? -1),
      );
      p.resolve(result);
    }
  }

  private schedule(lane: Lane): void {
    if (lane.busy || lane.timer) return;
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      void this.pump(lane);
    }, this.opts.lingerMs);
  }

  /** Sends the lane's queue, one request at a time, until it is empty. */
  private async pump(lane: Lane): Promise<void> {
    if (lane.busy) return;
    lane.busy = true;
    try {
      while (lane.queue.length > 0) {
        const batch = this.takeBatch(lane);
        if (batch.length > 0) await this.send(lane, batch);
      }
    } finally {
      lane.busy = false;
    }
  }

  /** The next request's records: unsettled, in arrival order, within the count and byte limits. */
  private takeBatch(lane: Lane): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (lane.queue.length > 0 && batch.length < this.opts.maxBatch) {
      const p = lane.queue[0]!;
      const size = p.value.length + (p.key?.length ?? 0);
      if (batch.length > 0 && bytes + size > this.opts.maxBatchBytes) break;
      lane.queue.shift();
      if (p.settled) continue;
      batch.push(p);
      bytes += size;
    }
    return batch;
  }

  private async send(lane: Lane, batch: Pending[]): Promise<void> {
    const started = Date.now();
    const messages: Message[] = batch.map((p) => ({
      key: p.key,
      value: p.value,
      partition: p.partition,
      timestamp: String(p.timestamp),
    }));
    // The batch is resent unchanged until the earliest deadline in it: a resend must be byte-for-byte the
    // same batch for the broker to recognise it, so its members cannot be dropped one by one.
    const giveUpAt = Math.min(...batch.map((p) => p.deadline));
    let attempts = 0;
    for (;;) {
      if (attempts === 0) {
        // Nothing of this batch has left the process yet: if Kafka cannot take it now, say so at once.
        const closedNow = this.opts.gate?.(lane.partition);
        if (closedNow !== undefined) {
          for (const p of batch) this.settle(p, refused(closedNow));
          this.opts.onBatch?.(batch.length, Date.now() - started, false);
          return;
        }
      }
      let producer: Producer;
      try {
        producer = await this.producer(lane);
      } catch (e) {
        // Connecting can fail on one dead broker while others are up: try again until the deadline.
        this.lastError = describeKafkaError(e);
        if (await this.giveUp(lane, batch, giveUpAt, started)) return;
        continue;
      }
      for (const p of batch) p.sent = true;
      attempts++;
      try {
        const remaining = giveUpAt - Date.now();
        const meta = await producer.send({
          topic: this.opts.topic,
          acks: -1,
          timeout: Math.max(500, Math.min(ATTEMPT_MS - 500, remaining)),
          messages,
        });
        // kafkajs can resolve a send without a partition it skipped (tulios/kafkajs#1303): not acknowledged.
        const answer = meta.find((m) => m.partition === lane.partition && m.errorCode === 0);
        if (answer === undefined) {
          for (const p of batch) this.settle(p, unknownOutcome('Kafka answered without this partition'));
          await this.resetProducer(lane);
        } else {
          const base = Number(answer.baseOffset);
          const appendTime = Number(answer.logAppendTime ?? -1);
          batch.forEach((p, i) => {
            const timestamp = appendTime >= 0 ? appendTime : p.timestamp;
            this.settle(p, { partition: p.partition, offset: base + i, timestamp });
          });
          this.lastError = undefined;
          this.lastOkAt = Date.now();
        }
        this.opts.onBatch?.(batch.length, Date.now() - started, answer !== undefined);
        return;
      } catch (e) {
        this.lastError = describeKafkaError(e);
        if (await this.giveUp(lane, batch, giveUpAt, started)) return;
      }
    }
  }

  /**
   * After a failed attempt: true (and the batch answered "outcome unknown", the producer replaced) once
   * the deadline passed or the node is closing; else waits a little before the next attempt.
   */
  private async giveUp(lane: Lane, batch: Pending[], giveUpAt: number, started: number): Promise<boolean> {
    const left = giveUpAt - Date.now();
    if (left > 0 && this.state === 'running') {
      await new Promise((r) => setTimeout(r, Math.min(100, left)));
      return false;
    }
    for (const p of batch) {
      this.settle(
        p,
        p.sent
          ? unknownOutcome(`Kafka did not confirm the write (${this.lastError})`)
          : unavailable(this.lastError),
      );
    }
    this.opts.onBatch?.(batch.length, Date.now() - started, false);
    // A fresh producer (new producer id): the next batch must not reuse sequence numbers of one that may have landed.
    await this.resetProducer(lane);
    return true;
  }

  private producer(lane: Lane): Promise<Producer> {
    if (lane.producer) return Promise.resolve(lane.producer);
    lane.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // One quick retry inside kafkajs (it refreshes metadata after a leader or connection error);
        // the lane's own loop retries beyond that, up to the write's deadline.
        retry: { retries: 1, initialRetryTime: 50, maxRetryTime: 200 },
      });
      try {
        await producer.connect();
        lane.producer = producer;
        return producer;
      } finally {
        lane.connecting = undefined;
      }
    })();
    return lane.connecting;
  }

  private async resetProducer(lane: Lane): Promise<void> {
    const old = lane.producer;
    lane.producer = undefined;
    await old?.disconnect().catch(() => {});
  }
}

function refused(r: GateRefusal): LagoonError {
  if (r.code === 'kafka_unavailable') return unavailable(r.reason);
  return new LagoonError('topic_unsafe', `This node takes no writes: ${r.reason}`, {
    status: 503,
    retryable: true,
    definite: true,
  });
}

function unavailable(reason: string | undefined): LagoonError {
  return new LagoonError(
    'kafka_unavailable',
    `Kafka cannot take writes right now${reason ? ` (${reason})` : ''}; the write was not applied.`,
    { status: 503, retryable: true, definite: true },
  );
}

function unknownOutcome(why: string): LagoonError {
  return new LagoonError(
    'write_outcome_unknown',
    `${why}; it may or may not have been applied. Retrying with the same Idempotency-Key is safe.`,
    { status: 504, retryable: true, definite: false },
  );
}

/** The most specific message a kafkajs error carries. */
export function describeKafkaError(e: unknown): string {
  const err = e as { message?: string; originalError?: { message?: string }; type?: string };
  return err.originalError?.message ?? err.message ?? String(e);
}

/**
 * Client settings for the writer's Kafka connection: each produce attempt is bounded (ATTEMPT_MS, by closing a
 * stalled connection so the resend finds the partition's current leader), then retried; kafkajs's own request
 * timeout is only a backstop behind it.
 */
export function writerClient(onRequest?: (apiKey: number) => void) {
  return {
    requestTimeout: ATTEMPT_MS + 1000,
    socketFactory: stallGuardedSockets(ATTEMPT_MS, onRequest ? { onRequest } : {}),
  } as const;
}
