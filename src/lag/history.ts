import type { LagoonEvent } from '../core/events.js';
import { LAG_STATUS_ORDER } from '../core/lag-status.js';
import type { LagReport, LagStatus } from './types.js';

/**
 * The last 15 minutes of a node's lag picture at 1 s resolution, so a dashboard opened after a fault
 * still shows it. Samples live in a columnar ring of typed arrays allocated once: memory is fixed at
 * construction and never grows, however long the node runs or however many samples are pushed.
 *
 * Bytes (defaults: 900 rows, 16 replica slots, 32 broker slots), allocated up front:
 * - per row: t Float64 (8) + write/apply rate Float32 (4 + 4) + outbox Uint32 (4) + Kafka reachable
 *   Uint8 (1) + brokers up / known bitmasks Uint32 (4 + 4) = 29 bytes;
 * - per row and replica slot: lag records Float64 (8) + applied offsets Float64 (8) + lag seconds
 *   Float32 (4) + status/active Uint8 (1) = 21 bytes, × 16 slots = 336 bytes;
 * - 900 × (29 + 336) = 328,500 bytes (~321 KiB), plus two small slot tables (16 names, 32 broker ids).
 * Offsets are Float64 because their sums outgrow Float32's 24-bit mantissa within hours of writes.
 */

/** Samples kept: 15 minutes at one per second. */
export const HISTORY_CAPACITY = 900;
/** How often the node samples its tracker's report. */
export const HISTORY_INTERVAL_MS = 1000;
/** Replicas tracked per sample; more are left out of the history (counted in `droppedReplicas`). */
export const HISTORY_REPLICA_SLOTS = 16;
/** Broker ids tracked per sample (one bit each in a Uint32 mask). */
export const HISTORY_BROKER_SLOTS = 32;

/** One replica in one history sample. */
export interface HistoryReplica {
  /** Sum of lagRecords over partitions (the dashboard's "records, all partitions"). */
  lagRecords: number;
  /** Worst partition's lagSeconds. */
  lagSeconds: number;
  /** Sum of applied offsets over partitions: lets a client derive apply rates from history. */
  applied: number;
  status: LagStatus;
  active: boolean;
}

/** One history sample: what the node's tracker reported at `t`. */
export interface HistorySample {
  /** ms since epoch (the report's generatedAt). */
  t: number;
  replicas: Record<string, HistoryReplica>;
  writeRate: number;
  applyRate: number;
  outbox: number;
  kafkaReachable: boolean;
  /** Ids of the brokers up at `t`, ascending. */
  brokersUp: number[];
  /** Ids of every broker the node knew at `t` (up or down), ascending. */
  brokersKnown: number[];
}

/** The columns of a history query, index-aligned with `t`. A replica absent at a sample has nulls there. */
export interface HistoryColumns {
  t: number[];
  writeRate: number[];
  applyRate: number[];
  outbox: number[];
  kafkaReachable: boolean[];
  brokersUp: number[][];
  /** Every broker id known in the period. */
  brokers: number[];
  replicas: Record<
    string,
    {
      lagRecords: Array<number | null>;
      lagSeconds: Array<number | null>;
      applied: Array<number | null>;
      status: Array<LagStatus | null>;
      active: Array<boolean | null>;
    }
  >;
}

/** A fault window: from a fault event to the heal event of the same subject and target (`to` null while open). */
export interface FaultWindow {
  from: number;
  to: number | null;
  kind: string;
  healKind: string | null;
  target: string | null;
}

/** GET /v1/lag/history: columns since `since`, plus the events and fault windows of that period. */
export interface LagHistoryResponse extends HistoryColumns {
  /** The reporting node; `replicas[node]` is its own replica. */
  node: string;
  intervalMs: number;
  capacity: number;
  /** Memory held by the ring (constant). */
  bytes: number;
  droppedReplicas: number;
  events: LagoonEvent[];
  windows: FaultWindow[];
}

/**
 * A status is stored as its index in the severity order + 1 (0 = no replica in the slot), in the low 7
 * bits. Derived from LAG_STATUS_ORDER so no status (GAP included) can be missing: one that were would
 * be stored as 0 and its replica vanish from the history. The ring is in memory only: codes need not be
 * stable across versions.
 */
const STATUS_CODES: readonly LagStatus[] = LAG_STATUS_ORDER;
const ACTIVE_BIT = 0x80;

/**
 * A fixed set of slots for keys (replica names, broker ids). A slot is reused once its key has left the
 * ring; when none is free, an active key may take the slot of the key that has been inactive longest
 * (the caller clears that slot's column), so dead replicas never crowd out live ones.
 */
class Slots<K> {
  readonly keys: Array<K | undefined>;
  private readonly lastSeen: Float64Array;
  private readonly lastActive: Float64Array;

  constructor(size: number) {
    this.keys = new Array<K | undefined>(size).fill(undefined);
    this.lastSeen = new Float64Array(size);
    this.lastActive = new Float64Array(size);
  }

  get bytes(): number {
    return this.lastSeen.byteLength + this.lastActive.byteLength + this.keys.length * 8;
  }

  /**
   * The key's slot, or a free one, or one whose key no sample at or after `oldest` uses, or (for an
   * active key) the slot of the key inactive longest and not active at `t`; -1 if none. `evicted` says
   * the slot's earlier samples belong to another key.
   */
  slot(key: K, t: number, oldest: number, active = true): { slot: number; evicted: boolean } {
    let free = -1;
    let victim = -1;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] === key) {
        this.lastSeen[i] = t;
        if (active) this.lastActive[i] = t;
        return { slot: i, evicted: false };
      }
      if (free < 0 && (this.keys[i] === undefined || this.lastSeen[i]! < oldest)) free = i;
      if (this.lastActive[i]! < t && (victim < 0 || this.lastActive[i]! < this.lastActive[victim]!))
        victim = i;
    }
    let evicted = false;
    if (free < 0 && active && victim >= 0) {
      free = victim;
      evicted = true;
    }
    if (free >= 0) {
      this.keys[free] = key;
      this.lastSeen[free] = t;
      this.lastActive[free] = active ? t : 0;
    }
    return { slot: free, evicted };
  }
}

/** Rounds for JSON: Float32 storage turns 12.3 into 12.300000190734863. */
const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/**
 * The columnar ring of history samples. Times must increase: a sample not newer than the last is
 * refused, which makes the ring sorted and a `since` query a binary search.
 */
export class HistoryRing {
  readonly capacity: number;
  droppedReplicas = 0;
  private start = 0;
  private count = 0;
  private readonly replicaSlots: Slots<string>;
  private readonly brokerSlots = new Slots<number>(HISTORY_BROKER_SLOTS);
  private readonly t: Float64Array;
  private readonly writeRate: Float32Array;
  private readonly applyRate: Float32Array;
  private readonly outbox: Uint32Array;
  private readonly kafka: Uint8Array;
  private readonly brokersUp: Uint32Array;
  private readonly brokersKnown: Uint32Array;
  private readonly lagRecords: Float64Array;
  private readonly applied: Float64Array;
  private readonly lagSeconds: Float32Array;
  private readonly status: Uint8Array;
  private readonly slots: number;

  constructor(capacity = HISTORY_CAPACITY, replicaSlots = HISTORY_REPLICA_SLOTS) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
    this.slots = replicaSlots;
    this.replicaSlots = new Slots<string>(replicaSlots);
    this.t = new Float64Array(capacity);
    this.writeRate = new Float32Array(capacity);
    this.applyRate = new Float32Array(capacity);
    this.outbox = new Uint32Array(capacity);
    this.kafka = new Uint8Array(capacity);
    this.brokersUp = new Uint32Array(capacity);
    this.brokersKnown = new Uint32Array(capacity);
    this.lagRecords = new Float64Array(capacity * replicaSlots);
    this.applied = new Float64Array(capacity * replicaSlots);
    this.lagSeconds = new Float32Array(capacity * replicaSlots);
    this.status = new Uint8Array(capacity * replicaSlots);
  }

  /** Samples held (≤ capacity). */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the ring's arrays and slot tables: fixed at construction. */
  get bytes(): number {
    const arrays = [
      this.t,
      this.writeRate,
      this.applyRate,
      this.outbox,
      this.kafka,
      this.brokersUp,
      this.brokersKnown,
      this.lagRecords,
      this.applied,
      this.lagSeconds,
      this.status,
    ];
    return arrays.reduce((a, x) => a + x.byteLength, 0) + this.replicaSlots.bytes + this.brokerSlots.bytes;
  }

  /** Time of the newest sample, or undefined when empty. */
  get lastT(): number | undefined {
    return this.count ? this.t[(this.start + this.count - 1) % this.capacity] : undefined;
  }

  /** Appends a sample, overwriting the oldest when full; false (and nothing stored) if `t` is not after the last. */
  push(s: HistorySample): boolean {
    const last = this.lastT;
    if (!Number.isFinite(s.t) || (last !== undefined && s.t <= last)) return false;
    let i: number;
    if (this.count < this.capacity) {
      i = (this.start + this.count) % this.capacity;
      this.count++;
    } else {
      i = this.start;
      this.start = (this.start + 1) % this.capacity;
    }
    // The oldest sample once this one is in: slots whose key was last seen before it are free.
    const oldest = i === this.start ? s.t : this.t[this.start]!;
    this.t[i] = s.t;
    this.writeRate[i] = s.writeRate;
    this.applyRate[i] = s.applyRate;
    this.outbox[i] = Math.min(0xffffffff, Math.max(0, Math.round(s.outbox)));
    this.kafka[i] = s.kafkaReachable ? 1 : 0;
    this.brokersUp[i] = this.brokerMask(s.brokersUp, s.t, oldest);
    this.brokersKnown[i] = this.brokerMask(s.brokersKnown, s.t, oldest);
    const base = i * this.slots;
    this.status.fill(0, base, base + this.slots);
    // Active replicas claim slots first, so inactive ones (groups of removed nodes) are the ones dropped.
    const entries = Object.entries(s.replicas).sort(([, x], [, y]) => Number(y.active) - Number(x.active));
    for (const [name, r] of entries) {
      const { slot, evicted } = this.replicaSlots.slot(name, s.t, oldest, r.active);
      if (slot < 0) {
        this.droppedReplicas++;
        continue;
      }
      if (evicted)
        for (let row = 0; row < this.capacity; row++) if (row !== i) this.status[row * this.slots + slot] = 0;
      const j = base + slot;
      this.lagRecords[j] = r.lagRecords;
      this.applied[j] = r.applied;
      this.lagSeconds[j] = r.lagSeconds;
      this.status[j] = (STATUS_CODES.indexOf(r.status) + 1) | (r.active ? ACTIVE_BIT : 0);
    }
    return true;
  }

  /** Samples with t ≥ since (all when since is undefined), oldest first. */
  samples(since?: number): HistorySample[] {
    const out: HistorySample[] = [];
    for (let k = this.firstAtOrAfter(since); k < this.count; k++) {
      const i = (this.start + k) % this.capacity;
      const replicas: Record<string, HistoryReplica> = {};
      this.eachReplica(i, (name, r) => {
        replicas[name] = r;
      });
      out.push({
        t: this.t[i]!,
        replicas,
        writeRate: round(this.writeRate[i]!, 2),
        applyRate: round(this.applyRate[i]!, 2),
        outbox: this.outbox[i]!,
        kafkaReachable: this.kafka[i] === 1,
        brokersUp: this.brokerIds(this.brokersUp[i]!),
        brokersKnown: this.brokerIds(this.brokersKnown[i]!),
      });
    }
    return out;
  }

  /** The same samples as columns (compact JSON: keys once, not per sample). */
  columns(since?: number): HistoryColumns {
    const from = this.firstAtOrAfter(since);
    const n = this.count - from;
    const cols: HistoryColumns = {
      t: [],
      writeRate: [],
      applyRate: [],
      outbox: [],
      kafkaReachable: [],
      brokersUp: [],
      brokers: [],
      replicas: {},
    };
    let known = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.start + from + k) % this.capacity;
      cols.t.push(this.t[i]!);
      cols.writeRate.push(round(this.writeRate[i]!, 2));
      cols.applyRate.push(round(this.applyRate[i]!, 2));
      cols.outbox.push(this.outbox[i]!);
      cols.kafkaReachable.push(this.kafka[i] === 1);
      cols.brokersUp.push(this.brokerIds(this.brokersUp[i]!));
      known |= this.brokersKnown[i]!;
      this.eachReplica(i, (name, r) => {
        let c = cols.replicas[name];
        if (!c) {
          const nulls = () => new Array<null>(n).fill(null);
          c = {
            lagRecords: nulls(),
            lagSeconds: nulls(),
            applied: nulls(),
            status: nulls(),
            active: nulls(),
          };
          cols.replicas[name] = c;
        }
        c.lagRecords[k] = r.lagRecords;
        c.lagSeconds[k] = r.lagSeconds;
        c.applied[k] = r.applied;
        c.status[k] = r.status;
        c.active[k] = r.active;
      });
    }
    cols.brokers = this.brokerIds(known >>> 0);
    return cols;
  }

  private eachReplica(i: number, f: (name: string, r: HistoryReplica) => void): void {
    const base = i * this.slots;
    for (let s = 0; s < this.slots; s++) {
      const code = this.status[base + s]!;
      const name = this.replicaSlots.keys[s];
      if (code === 0 || name === undefined) continue;
      f(name, {
        lagRecords: this.lagRecords[base + s]!,
        lagSeconds: round(this.lagSeconds[base + s]!, 3),
        applied: this.applied[base + s]!,
        status: STATUS_CODES[(code & ~ACTIVE_BIT) - 1] ?? 'OK',
        active: (code & ACTIVE_BIT) !== 0,
      });
    }
  }

  /** Index (0 = oldest) of the first sample with t ≥ since: a binary search, times being increasing. */
  private firstAtOrAfter(since: number | undefined): number {
    if (since === undefined || !Number.isFinite(since)) return 0;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.t[(this.start + mid) % this.capacity]! < since) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private brokerMask(ids: number[], t: number, oldest: number): number {
    let mask = 0;
    for (const id of ids) {
      const { slot } = this.brokerSlots.slot(id, t, oldest, false);
      if (slot >= 0) mask |= 1 << slot;
    }
    return mask >>> 0;
  }

  private brokerIds(mask: number): number[] {
    const ids: number[] = [];
    for (let s = 0; s < HISTORY_BROKER_SLOTS; s++) {
      const id = this.brokerSlots.keys[s];
      if ((mask >>> s) & 1 && id !== undefined) ids.push(id);
    }
    return ids.sort((a, b) => a - b);
  }
}

/** One history sample from a tracker report. */
export function sampleOf(report: LagReport): HistorySample {
  const replicas: Record<string, HistoryReplica> = {};
  for (const r of report.replicas) {
    let lag = 0;
    let applied = 0;
    for (const p of r.partitions) {
      lag += p.lagRecords;
      applied += p.appliedOffset;
    }
    replicas[r.node] = {
      lagRecords: lag,
      lagSeconds: r.maxLagSeconds,
      applied,
      status: r.status,
      active: r.active,
    };
  }
  return {
    t: report.generatedAt,
    replicas,
    writeRate: report.rates.writesPerSec,
    applyRate: report.rates.appliedPerSec,
    outbox: report.outboxDepth,
    kafkaReachable: report.kafkaReachable,
    brokersUp: report.brokers.filter((b) => b.up).map((b) => b.id),
    brokersKnown: report.brokers.map((b) => b.id),
  };
}

// Event kinds are `<subject>_<verb>` (broker_kill, broker_resume, node_pause, …).
const FAULT_VERBS = new Set([
  'kill',
  'stop',
  'pause',
  'crash',
  'fail',
  'down',
  'partition',
  'blackhole',
  'slow',
]);
const HEAL_VERBS = new Set(['start', 'resume', 'restart', 'heal', 'up', 'recover']);

function split(kind: string): { subject: string; verb: string } | undefined {
  const i = kind.lastIndexOf('_');
  return i > 0 ? { subject: kind.slice(0, i), verb: kind.slice(i + 1) } : undefined;
}

/**
 * Fault windows from events: a fault (`x_kill|stop|pause|…`) opens a window for its subject and target,
 * the next heal (`x_start|resume|restart|…`) of the same subject and target closes it. A second fault
 * while open keeps the first start (kill after pause is one outage); a heal with no open fault is
 * just an event. Still-open windows have `to: null`. The dashboard applies the same rule in app.js.
 */
export function faultWindows(events: readonly LagoonEvent[]): FaultWindow[] {
  const open = new Map<string, LagoonEvent>();
  const out: FaultWindow[] = [];
  for (const e of [...events].sort((a, b) => a.at - b.at)) {
    const k = split(e.kind);
    if (!k) continue;
    const key = `${k.subject}|${e.target ?? ''}`;
    if (FAULT_VERBS.has(k.verb)) {
      if (!open.has(key)) open.set(key, e);
    } else if (HEAL_VERBS.has(k.verb)) {
      const f = open.get(key);
      if (!f) continue;
      open.delete(key);
      out.push({ from: f.at, to: e.at, kind: f.kind, healKind: e.kind, target: f.target ?? null });
    }
  }
  for (const f of open.values())
    out.push({ from: f.at, to: null, kind: f.kind, healKind: null, target: f.target ?? null });
  return out.sort((a, b) => a.from - b.from);
}

/** Options of {@link LagHistory}. */
export interface LagHistoryOptions {
  /** The tracker's current report (`tracker.report()`). */
  report: () => LagReport;
  /** The node's recent events (`events.list()`). */
  events: () => LagoonEvent[];
  intervalMs?: number;
  capacity?: number;
}

/**
 * Samples the tracker's report once per interval into a {@link HistoryRing} and answers history
 * queries. Lifecycle like the node's other components: start(), then close() (idempotent).
 */
export class LagHistory {
  readonly ring: HistoryRing;
  private readonly o: LagHistoryOptions;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: LagHistoryOptions) {
    this.o = opts;
    this.ring = new HistoryRing(opts.capacity ?? HISTORY_CAPACITY);
  }

  start(): void {
    if (this.closed || this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.o.intervalMs ?? HISTORY_INTERVAL_MS);
    // History must never keep a process alive on its own.
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now; a report not newer than the last sample (tracker stalled) is skipped. */
  sample(): boolean {
    try {
      return this.ring.push(sampleOf(this.o.report()));
    } catch {
      // A report that cannot be sampled must not break the node; the gap shows in the history.
      return false;
    }
  }

  /** The history since `since` (ms; all of it when undefined), with the events and fault windows in that period. */
  query(since?: number): LagHistoryResponse {
    const report = this.o.report();
    const cols = this.ring.columns(since);
    const from = since ?? cols.t[0] ?? report.generatedAt;
    const events = this.o.events();
    const windows = faultWindows(events).filter((w) => w.to === null || w.to >= from);
    // A window that began before `from` still needs its opening event, so a client can pair it too.
    const openers = new Set(windows.map((w) => w.from));
    return {
      node: report.node,
      intervalMs: this.o.intervalMs ?? HISTORY_INTERVAL_MS,
      capacity: this.ring.capacity,
      bytes: this.ring.bytes,
      droppedReplicas: this.ring.droppedReplicas,
      ...cols,
      events: events.filter((e) => e.at >= from || openers.has(e.at)),
      windows,
    };
  }
}
