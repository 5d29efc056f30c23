import { encodeKey } from '../core/record.js';
import type { LagoonError } from '../errors.js';
import type { GateRefusal, WriteAck } from '../log/writer.js';
import type { Outbox, OutboxEntry } from './outbox.js';

/** What the drainer needs of the log: the node's idempotent Writer. */
export interface AppendTarget {
  append(key: Buffer | null, value: Buffer, partition: number, timeoutMs: number): Promise<WriteAck>;
}

export interface DrainerOptions {
  /** The Writer's gate: a partition it refuses is not tried (nothing would leave the process anyway). */
  gate: (partition: number) => GateRefusal | undefined;
  /** Deadline of one append attempt (the node's write timeout). */
  attemptTimeoutMs: number;
  /** Most entries of one partition in flight at once (at most one per key). */
  window?: number;
  /** Pause before a partition's next round after a failed attempt (ms). */
  retryMs?: number;
  /** How long sent entries' positions are kept for GET /v1/writes/{id} (wall clock; local bookkeeping). */
  keepSentMs: number;
  /** One structured line per state change. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export type DrainerState = 'idle' | 'running' | 'closing' | 'closed';

/**
 * Drains the outbox into the log through the Writer, as soon as a partition takes writes again. Partitions drain
 * independently (one failing over never holds up the others). Order: a key's entries go one at a time — the next
 * is sent only after the log acknowledged the previous — so a later buffered write to a key never lands before an
 * earlier one, whatever batches, resends or producer resets happen; entries of different keys go together.
 * A failed attempt (refused, or outcome unknown) leaves the entry where it was, and it is resent with the same
 * bytes: the replicas recognise a copy by its write id and idempotency key and apply it once.
 */
export class OutboxDrainer {
  state: DrainerState = 'idle';
  private readonly outbox: Outbox;
  private readonly target: AppendTarget;
  private readonly o: Required<Omit<DrainerOptions, 'log'>> & Pick<DrainerOptions, 'log'>;
  private readonly busy = new Map<number, Promise<void>>();
  private readonly retryAt = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private draining = false;
  private lastPurge = 0;
  /** Entries appended to the log since start. */
  drained = 0;
  lastError: string | undefined;

  constructor(outbox: Outbox, target: AppendTarget, opts: DrainerOptions) {
    this.outbox = outbox;
    this.target = target;
    this.o = { window: 500, retryMs: 250, ...opts };
  }

  start(): void {
    this.state = 'running';
    this.schedule(0);
  }

  /** Look now (a write was just buffered). */
  kick(): void {
    if (this.state === 'running') this.schedule(0);
  }

  status(): { state: DrainerState; drained: number; lastError: string | null } {
    return { state: this.state, drained: this.drained, lastError: this.lastError ?? null };
  }

  /** Idempotent: stops starting rounds and waits for the ones in flight (the Writer's close settles them). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closing';
      clearTimeout(this.timer);
      await Promise.allSettled([...this.busy.values()]);
      this.state = 'closed';
    })();
    return this.closing;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref?.();
  }

  private tick(): void {
    if (this.state !== 'running') return;
    const now = Date.now();
    let next = 500;
    try {
      const pending = this.outbox.partitionsPending();
      for (const p of pending) {
        if (this.busy.has(p)) continue;
        const at = this.retryAt.get(p) ?? 0;
        if (at > now) {
          next = Math.min(next, at - now);
          continue;
        }
        const round = this.round(p)
          .catch((e: unknown) => {
            // A failed round (the outbox file unreadable, say) is retried like a refused append.
            this.lastError = (e as Error).message;
            this.retryAt.set(p, Date.now() + this.o.retryMs);
          })
          .finally(() => {
            this.busy.delete(p);
            this.kick();
          });
        this.busy.set(p, round);
      }
      this.noteDraining(pending.length > 0);
      if (now - this.lastPurge > 60_000) {
        this.lastPurge = now;
        this.outbox.purgeSent(now - this.o.keepSentMs);
      }
    } catch (e) {
      this.lastError = (e as Error).message;
    }
    this.schedule(Math.max(20, next));
  }

  /** One round on a partition: the oldest entry of each key, together; failures wait for the next round. */
  private async round(partition: number): Promise<void> {
    const refused = this.o.gate(partition);
    if (refused !== undefined) {
      this.lastError = refused.reason;
      this.retryAt.set(partition, Date.now() + 500);
      return;
    }
    const seen = new Set<string>();
    const pick: OutboxEntry[] = [];
    for (const e of this.outbox.head(partition, this.o.window * 4)) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      pick.push(e);
      if (pick.length >= this.o.window) break;
    }
    const results = await Promise.allSettled(
      pick.map((e) => this.target.append(encodeKey(e.key), e.record, partition, this.o.attemptTimeoutMs)),
    );
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        // Closed under us (shutdown): the entry stays buffered and is resent after the restart — a copy the
        // replicas apply once.
        if (this.state === 'closed') return;
        try {
          this.outbox.markSent(pick[i]!, r.value.offset);
          this.drained++;
        } catch {
          failed++;
        }
      } else {
        failed++;
        this.lastError = (r.reason as LagoonError).message;
      }
    });
    if (failed > 0) this.retryAt.set(partition, Date.now() + this.o.retryMs);
    else this.retryAt.delete(partition);
  }

  private noteDraining(pending: boolean): void {
    if (pending === this.draining) return;
    this.draining = pending;
    this.o.log?.(pending ? 'outbox_pending' : 'outbox_drained', {
      records: this.outbox.stats().records,
      drained: this.drained,
    });
  }
}
