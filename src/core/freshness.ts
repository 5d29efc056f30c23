/**
 * How stale a replica's partition may be — an upper bound, never a guess.
 *
 * An end-offset observation (end, t) says: every write acknowledged before time t is below `end`.
 * Once the replica has applied up to `end`, it holds every write acknowledged before t, so its
 * staleness is at most now − t. The tracker keeps the pending observations per partition and, as the
 * replica advances, moves `freshAsOf` to the newest observation it has reached. Pure: time is passed in.
 */
export class Freshness {
  private readonly pending = new Map<number, Array<{ end: number; t: number }>>();
  private readonly freshAsOf = new Map<number, number>();
  private readonly applied = new Map<number, number>();
  private readonly ends = new Map<number, number>();
  private readonly endAt = new Map<number, number>();

  /** An end offset read from Kafka by a request sent at time `t`. */
  observeEnd(partition: number, end: number, t: number): void {
    this.ends.set(partition, Math.max(end, this.ends.get(partition) ?? 0));
    this.endAt.set(partition, Math.max(t, this.endAt.get(partition) ?? 0));
    const q = this.pending.get(partition) ?? [];
    const last = q[q.length - 1];
    if (last && last.end === end) last.t = Math.max(last.t, t);
    else q.push({ end, t });
    // Bounded memory: an observation superseded by a later one with the same reach is dropped above;
    // cap the queue so a long stall keeps only recent history (the bound only gets more conservative).
    if (q.length > 256) q.splice(0, q.length - 256);
    this.pending.set(partition, q);
    this.advance(partition);
  }

  /** The replica's next offset to apply on `partition`. */
  observeApplied(partition: number, applied: number): void {
    if (applied <= (this.applied.get(partition) ?? 0)) return;
    this.applied.set(partition, applied);
    this.advance(partition);
  }

  /** Latest known end offset (high watermark). */
  endOffset(partition: number): number {
    return this.ends.get(partition) ?? 0;
  }

  /** Records known to exist that the replica has not applied yet (never negative). */
  lagRecords(partition: number): number {
    return Math.max(0, this.endOffset(partition) - (this.applied.get(partition) ?? 0));
  }

  /**
   * An upper bound on the records the replica lacks at `now`, or Infinity when the newest end offset
   * was read more than `maxAgeMs` ago: an old end offset says nothing about what was written since, so
   * a node cut off from Kafka never claims to be 0 records behind.
   */
  lagRecordsBound(partition: number, now: number, maxAgeMs: number): number {
    const at = this.endAt.get(partition);
    if (at === undefined || now - at > maxAgeMs) return Number.POSITIVE_INFINITY;
    return this.lagRecords(partition);
  }

  /** Upper bound on staleness in ms at `now`; Infinity before the first observation was reached. */
  stalenessMs(partition: number, now: number): number {
    const t = this.freshAsOf.get(partition);
    return t === undefined ? Number.POSITIVE_INFINITY : Math.max(0, now - t);
  }

  private advance(partition: number): void {
    const q = this.pending.get(partition);
    if (!q) return;
    const applied = this.applied.get(partition) ?? 0;
    while (q.length > 0 && q[0]!.end <= applied) {
      const { t } = q.shift()!;
      this.freshAsOf.set(partition, Math.max(t, this.freshAsOf.get(partition) ?? 0));
    }
  }
}
