import type { Kafka, Message, Producer } from 'kafkajs';
import { LagoonError } from '../errors.js';

/** Where a write landed in the log. */
export interface WriteAck {
  partition: number;
  offset: number;
  /** Record CreateTime (ms), the time TTLs and time lag are measured from. */
  timestamp: number;
}

interface Pending {
  key: Buffer | null;
  value: Buffer;
  partition: number;
  deadline: number;
  timestamp: number;
  settled: boolean;
  resolve: (ack: WriteAck) => void;
  reject: (err: LagoonError) => void;
  timer: NodeJS.Timeout;
}

export interface WriterOptions {
  topic: string;
  lingerMs: number;
  /** Largest number of records in one produce request. */
  maxBatch?: number;
  onBatch?: (records: number, ms: number, ok: boolean) => void;
  /**
   * Circuit breaker: returns why `partition` cannot take acks=all writes now (no leader, ISR below
   * min.insync.replicas, brokers unreachable), or undefined. Gated records are never sent.
   */
  gate?: (partition: number) => string | undefined;
}

export type WriterState = 'idle' | 'running' | 'closing' | 'closed';

/**
 * The write path's producer: acks=all, idempotent, one request in flight. Concurrent appends are
 * coalesced into one produce request (a short linger, then whatever queued while the previous request
 * was in flight), and each caller still gets its own partition and offset back.
 *
 * Every append is bounded by its deadline. A record that was never handed to Kafka fails *definitely*
 * (503 kafka_unavailable: it did not happen); a record whose request was sent but not acknowledged in
 * time fails *indefinitely* (504 write_outcome_unknown: it may have happened).
 */
export class Writer {
  private readonly kafka: Kafka;
  private readonly opts: Required<Omit<WriterOptions, 'onBatch' | 'gate'>> &
    Pick<WriterOptions, 'onBatch' | 'gate'>;
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private queue: Pending[] = [];
  private flushing = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private lastError: string | undefined;
  private lastOkAt = 0;
  state: WriterState = 'idle';

  constructor(kafka: Kafka, opts: WriterOptions) {
    this.kafka = kafka;
    this.opts = { maxBatch: 2000, ...opts };
  }

  start(): void {
    this.state = 'running';
    // Connect eagerly but do not fail start-up: Kafka may be down and come back.
    this.ensureProducer().catch(() => {});
  }

  /** Appends one record; resolves once Kafka acknowledged it with acks=all. */
  append(key: Buffer | null, value: Buffer, partition: number, timeoutMs: number): Promise<WriteAck> {
    if (this.state !== 'running') {
      return Promise.reject(
        new LagoonError('shutting_down', 'Node is shutting down', { status: 503, retryable: true }),
      );
    }
    return new Promise<WriteAck>((resolve, reject) => {
      const p: Pending = {
        key,
        value,
        partition,
        deadline: Date.now() + timeoutMs,
        timestamp: Date.now(),
        settled: false,
        resolve,
        reject,
        timer: setTimeout(() => this.expire(p), timeoutMs),
      };
      this.queue.push(p);
      this.scheduleFlush();
    });
  }

  status(): { state: WriterState; queued: number; lastError: string | undefined; lastOkAt: number } {
    return {
      state: this.state,
      queued: this.queue.length,
      lastError: this.lastError,
      lastOkAt: this.lastOkAt,
    };
  }

  /** Idempotent: stops taking writes, lets the in-flight request finish, fails what is still queued. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      clearTimeout(this.flushTimer);
      for (let i = 0; i < 100 && this.flushing; i++) await new Promise((r) => setTimeout(r, 50));
      for (const p of this.queue.splice(0)) {
        this.settle(
          p,
          new LagoonError('shutting_down', 'Node is shutting down', { status: 503, retryable: true }),
        );
      }
      await this.producer?.disconnect().catch(() => {});
      this.state = 'closed';
    })();
    return this.closing;
  }

  private expire(p: Pending): void {
    if (p.settled) return;
    const idx = this.queue.indexOf(p);
    if (idx >= 0) {
      // Never sent: definitely not written.
      this.queue.splice(idx, 1);
      this.settle(p, unavailable(this.lastError));
    } else {
      this.settle(
        p,
        new LagoonError(
          'write_outcome_unknown',
          'Kafka did not acknowledge the write in time; it may or may not have been applied. ' +
            'Retrying with the same Idempotency-Key is safe.',
          { status: 504, retryable: true, definite: false },
        ),
      );
    }
  }

  private settle(p: Pending, result: WriteAck | LagoonError): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (result instanceof LagoonError) p.reject(result);
    else p.resolve(result);
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, this.opts.lingerMs);
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.opts.maxBatch).filter((p) => !p.settled);
        if (batch.length > 0) await this.send(batch);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async send(all: Pending[]): Promise<void> {
    const started = Date.now();
    const batch: Pending[] = [];
    for (const p of all) {
      const closed = this.opts.gate?.(p.partition);
      if (closed === undefined) batch.push(p);
      else this.settle(p, unavailable(closed));
    }
    if (batch.length === 0) return;
    let producer: Producer;
    try {
      producer = await this.ensureProducer();
    } catch (e) {
      this.lastError = (e as Error).message;
      for (const p of batch) this.settle(p, unavailable(this.lastError));
      this.opts.onBatch?.(batch.length, Date.now() - started, false);
      return;
    }
    const messages: Message[] = batch.map((p) => ({
      key: p.key,
      value: p.value,
      partition: p.partition,
      timestamp: String(p.timestamp),
    }));
    try {
      const remaining = Math.max(...batch.map((p) => p.deadline)) - Date.now();
      const meta = await producer.send({
        topic: this.opts.topic,
        acks: -1,
        timeout: Math.max(1000, Math.min(30_000, remaining)),
        messages,
      });
      const base = new Map<number, number>();
      for (const m of meta) base.set(m.partition, Number(m.baseOffset));
      const next = new Map<number, number>();
      for (const p of batch) {
        const b = base.get(p.partition);
        if (b === undefined) {
          this.settle(
            p,
            new LagoonError('write_outcome_unknown', 'Kafka answered without this partition', {
              status: 504,
              definite: false,
              retryable: true,
            }),
          );
          continue;
        }
        const i = next.get(p.partition) ?? 0;
        next.set(p.partition, i + 1);
        this.settle(p, { partition: p.partition, offset: b + i, timestamp: p.timestamp });
      }
      this.lastError = undefined;
      this.lastOkAt = Date.now();
      this.opts.onBatch?.(batch.length, Date.now() - started, true);
    } catch (e) {
      // Once a produce request has left, a failure is never proof that nothing was appended: an earlier
      // attempt (kafkajs retries) may have reached the leader and be committed later. So the outcome is
      // unknown. Definite failures are only those the gate or the connect step stop before sending.
      this.lastError = describeKafkaError(e);
      for (const p of batch) {
        this.settle(
          p,
          new LagoonError(
            'write_outcome_unknown',
            `Kafka did not confirm the write (${this.lastError}); it may or may not have been applied. ` +
              'Retrying with the same Idempotency-Key is safe.',
            { status: 504, retryable: true, definite: false },
          ),
        );
      }
      this.opts.onBatch?.(batch.length, Date.now() - started, false);
      // A fresh producer (new producer id) after any failure: no sequence-number state carried over.
      await this.resetProducer();
    }
  }

  private ensureProducer(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      try {
        await producer.connect();
        this.producer = producer;
        return producer;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private async resetProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    await old?.disconnect().catch(() => {});
  }
}

function unavailable(reason: string | undefined): LagoonError {
  return new LagoonError(
    'kafka_unavailable',
    `Kafka cannot take writes right now${reason ? ` (${reason})` : ''}; the write was not applied.`,
    { status: 503, retryable: true, definite: true },
  );
}

function describeKafkaError(e: unknown): string {
  const err = e as { message?: string; originalError?: { message?: string }; type?: string };
  return err.originalError?.message ?? err.message ?? String(e);
}
