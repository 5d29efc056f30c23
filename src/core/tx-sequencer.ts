/**
 * The order in which a replica applies what it fetched, so that an atomic batch is seen whole or not at all.
 *
 * A batch (POST /v1/batch) is one Kafka transaction with one part record on each partition it touches. Read
 * committed, a replica sees either every part or none, but on different partitions at different times. So the
 * replica holds a partition at a batch part until every part of that batch is at the head of its partition,
 * then applies the whole batch in one SQLite transaction; everything before a part on its partition is applied
 * first and everything after it later, so each key still sees its writes in log order.
 *
 * Holding can deadlock: batches T1 and T2 from two nodes, both on partitions A and B, may land T1 before T2 on A
 * and T2 before T1 on B. A waits for T1's part on B, which sits behind T2, which waits for its part on A, behind
 * T1. Such a cycle is a fact of the log, not of timing: once every part of the batches at the heads of a closed
 * group of partitions is known (a terminal strongly connected component of the wait-for graph whose edges are
 * all known), no later record can break it. Every replica then rejects the same batch — the smallest batch id
 * in the component — as `batch_conflict`; its parts become rejections applied in log order, and the others go
 * on. A component that still waits for a part not yet fetched is left alone until it is known, so a replica that
 * fetched less never decides differently, only later.
 *
 * Pure: no I/O. The replica feeds it fetched records and applies the steps it returns.
 */

/** A record as the consumer hands it over (the shape of the store's LogRecord). */
export interface SeqRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** What the sequencer needs to know of a batch part. */
export interface TxTag {
  tx: string;
  parts: readonly number[];
}

export type Step<R extends SeqRecord = SeqRecord> =
  /** Apply these records of one partition in order, then set its applied offset to `through`. */
  | { kind: 'records'; partition: number; records: R[]; through: number }
  /** Apply a whole batch atomically: one part per partition, each at the head of its partition. */
  | { kind: 'batch'; tx: string; parts: Array<{ partition: number; record: R }> }
  /** Reject one part of a batch that lost a wait-for cycle (every part is met in its own log order). */
  | { kind: 'conflict'; tx: string; partition: number; record: R };

interface Queued<R> {
  record: R;
  tag: TxTag | undefined;
}

export class TxSequencer<R extends SeqRecord = SeqRecord> {
  private readonly queues: Array<Array<Queued<R>>>;
  /** Next offset expected per partition: records below it are redeliveries and dropped. */
  private readonly next: number[];
  /** Next offset after everything fetched so far (filtered transaction markers and aborted records included). */
  private readonly fetchedThrough: number[];
  /** Applied offset as last stepped, per partition. */
  private readonly stepped: number[];
  /** Batches that lost a cycle: their parts are rejected as they reach the head. */
  private readonly doomed = new Set<string>();

  /**
   * @param tagOf which records are batch parts (and of which batch); must be a pure function of the bytes.
   * @param decided whether a batch was already decided (applied or rejected) by this replica — asked when a part
   *   of it is missing from another partition's queue, which after a restart means it lies below that partition's
   *   applied offset: only a rejected batch can be half-applied, so it is rejected here too.
   */
  constructor(
    readonly partitions: number,
    private readonly tagOf: (r: R) => TxTag | undefined,
    private readonly decided: (tx: string) => boolean = () => false,
  ) {
    this.queues = Array.from({ length: partitions }, () => []);
    this.next = new Array<number>(partitions).fill(0);
    this.fetchedThrough = new Array<number>(partitions).fill(0);
    this.stepped = new Array<number>(partitions).fill(0);
  }

  /** Forgets everything queued and restarts each partition at its applied offset (after a seek or a rejoin). */
  reset(applied: ReadonlyMap<number, number>): void {
    for (let p = 0; p < this.partitions; p++) {
      const at = applied.get(p) ?? 0;
      this.queues[p] = [];
      this.next[p] = at;
      this.fetchedThrough[p] = at;
      this.stepped[p] = at;
    }
    this.doomed.clear();
  }

  /** Records held on `partition` (for bounding memory and for status). */
  queued(partition: number): number {
    return this.queues[partition]?.length ?? 0;
  }

  /**
   * Adds one fetch's records of a partition, in offset order. `through`: the next offset after the fetch,
   * counting records the consumer filtered out (transaction markers, aborted records), so the applied offset can
   * move past them.
   */
  push(partition: number, records: readonly R[], through: number): void {
    const q = this.queues[partition];
    if (q === undefined) throw new RangeError(`no partition ${partition}`);
    for (const r of records) {
      if (r.offset < this.next[partition]!) continue;
      const tag = this.tagOf(r);
      // A part that does not list its own partition, or lists one this replica does not have, can never be
      // completed: it is held as a plain record, which the store rejects as invalid.
      const wellPlaced =
        tag?.parts.includes(partition) === true && tag.parts.every((x) => x < this.partitions);
      q.push({ record: r, tag: wellPlaced ? tag : undefined });
      this.next[partition] = r.offset + 1;
    }
    this.fetchedThrough[partition] = Math.max(
      this.fetchedThrough[partition]!,
      through,
      this.next[partition]!,
    );
    this.next[partition] = this.fetchedThrough[partition]!;
  }

  /** Everything that can be applied now, in an order that keeps each partition's log order. */
  drain(): Array<Step<R>> {
    const steps: Array<Step<R>> = [];
    for (;;) {
      let progressed = false;
      for (let p = 0; p < this.partitions; p++) progressed = this.drainPlain(p, steps) || progressed;
      for (let p = 0; p < this.partitions; p++) {
        const head = this.queues[p]![0];
        if (head?.tag === undefined) continue;
        const tag = head.tag;
        if (tag.parts[0] !== p) continue; // judged once, from its first partition
        if (!this.atHeads(tag)) continue;
        const parts = tag.parts.map((q) => {
          const item = this.queues[q]!.shift()!;
          this.stepped[q] = item.record.offset + 1;
          return { partition: q, record: item.record };
        });
        steps.push({ kind: 'batch', tx: tag.tx, parts });
        progressed = true;
      }
      if (!progressed) progressed = this.breakCycles();
      if (!progressed) return steps;
    }
  }

  /** Applies plain records (and doomed parts) at the head of `p`; true if anything moved. */
  private drainPlain(p: number, steps: Array<Step<R>>): boolean {
    const q = this.queues[p]!;
    let moved = false;
    let run: R[] = [];
    const flush = (through: number) => {
      if (run.length > 0 || through > this.stepped[p]!) {
        steps.push({ kind: 'records', partition: p, records: run, through });
        this.stepped[p] = through;
        moved = true;
      }
      run = [];
    };
    while (q.length > 0) {
      const head = q[0]!;
      if (head.tag !== undefined && !this.doomed.has(head.tag.tx)) break;
      q.shift();
      if (head.tag !== undefined) {
        flush(head.record.offset);
        steps.push({ kind: 'conflict', tx: head.tag.tx, partition: p, record: head.record });
        this.stepped[p] = head.record.offset + 1;
        moved = true;
      } else run.push(head.record);
    }
    flush(q.length > 0 ? q[0]!.record.offset : this.fetchedThrough[p]!);
    return moved;
  }

  /** True if every part of `tag` is at the head of its partition. */
  private atHeads(tag: TxTag): boolean {
    return tag.parts.every((q) => {
      const h = this.queues[q]?.[0];
      return h?.tag?.tx === tag.tx;
    });
  }

  /**
   * Called when nothing can move. Rejects a batch that was already decided before a restart, or the smallest
   * batch of each terminal wait-for cycle (see the file comment). True if it changed anything.
   */
  private breakCycles(): boolean {
    // Wait-for edges between blocked partitions: p → q when p's head batch has a part on q behind q's head.
    const edges = new Map<number, number[]>();
    const unresolved = new Set<number>();
    for (let p = 0; p < this.partitions; p++) {
      const tag = this.queues[p]![0]?.tag;
      if (tag === undefined) continue;
      const out: number[] = [];
      for (const q of tag.parts) {
        if (q === p || this.queues[q]![0]?.tag?.tx === tag.tx) continue;
        if (this.queues[q]!.some((e) => e.tag?.tx === tag.tx)) out.push(q);
        else unresolved.add(p);
      }
      edges.set(p, out);
    }
    // A batch with a part missing that this replica already decided (rejected before a restart): reject the rest.
    let changed = false;
    for (const p of unresolved) {
      const tag = this.queues[p]![0]!.tag!;
      if (!this.doomed.has(tag.tx) && this.decided(tag.tx)) {
        this.doomed.add(tag.tx);
        changed = true;
      }
    }
    if (changed) return true;
    for (const component of stronglyConnected(edges)) {
      if (component.length < 2) continue;
      const inside = new Set(component);
      const closed = component.every(
        (p) => !unresolved.has(p) && (edges.get(p) ?? []).every((q) => inside.has(q)),
      );
      if (!closed) continue;
      // The smallest batch id (code-unit order, the same on every replica).
      const victim = component.map((p) => this.queues[p]![0]!.tag!.tx).sort()[0]!;
      this.doomed.add(victim);
      changed = true;
    }
    return changed;
  }
}

/** Tarjan's strongly connected components of a directed graph given as adjacency lists. */
export function stronglyConnected(edges: ReadonlyMap<number, readonly number[]>): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const out: number[][] = [];
  let counter = 0;
  const visit = (v: number) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: number[] = [];
      let w: number;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      out.push(component.sort((a, b) => a - b));
    }
  };
  for (const v of [...edges.keys()].sort((a, b) => a - b)) if (!index.has(v)) visit(v);
  return out;
}
