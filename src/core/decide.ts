import { type DecodedRecord, requestFingerprint, type TxOp } from './record.js';
import { formatVersion } from './version.js';

/** A stored entry. `value` is the canonical JSON text of the value (JSON.stringify of the decoded value). */
export interface Entry {
  key: string;
  value: string;
  /** Version = log position of the write that produced this entry. */
  version: string;
  /** Log time (ms) of that write. */
  updatedAt: number;
  /** Log time (ms) at which the entry stops existing, or null. */
  expiresAt: number | null;
}

/** Why a write record was rejected. */
export type RejectReason =
  | 'version_mismatch'
  | 'already_exists'
  | 'not_found'
  | 'invalid_record'
  | 'idempotency_key_reused'
  /** A strict write Kafka appended after the deadline it carries (record `dl`): it never applies. */
  | 'deadline_passed'
  /** A batch in a wait-for cycle with other batches (see core/tx-sequencer): rejected whole, on every replica. */
  | 'batch_conflict';

/**
 * How long (log time) a write id is remembered to spot a second copy of the same record. Producer retries that
 * append a batch twice happen within seconds (one request timeout plus a leader change); 15 minutes of log time
 * is far beyond that and keeps the table small.
 */
export const WID_WINDOW_MS = 15 * 60 * 1000;
/** How long (log time) an Idempotency-Key is remembered per store key: a retry within 24 h gets the first answer. */
export const IDEM_WINDOW_MS = 24 * 3600 * 1000;

/**
 * How long (log time) a replica keeps its bookkeeping — write verdicts, idempotency keys, write ids — by default.
 * It is part of the replicated state machine: every replica must use the same value (the store records it).
 */
export const BOOKKEEPING_RETENTION_MS = IDEM_WINDOW_MS;

/** The memory windows `decide` judges by: idempotency keys and write ids older than these are ignored. */
export interface MemoryWindows {
  idemMs: number;
  widMs: number;
}

/**
 * The windows for a bookkeeping retention: idempotency keys live as long as the retention; write ids 15 minutes,
 * never longer than the retention (a remembered wid points at a verdict that must still be there).
 */
export function windowsFor(retentionMs: number): MemoryWindows {
  return { idemMs: retentionMs, widMs: Math.min(WID_WINDOW_MS, retentionMs) };
}

/** An earlier record the store remembers (by write id or idempotency key). */
export interface Remembered {
  /** Version whose outcome that earlier write got: its own, or the original it duplicated. */
  version: string;
  /** Partition log time when it was applied. */
  at: number;
}

/** True if a memory made at log time `at` is still within `windowMs` at log time `t`. */
export function remembers(at: number, t: number, windowMs: number): boolean {
  return t - at < windowMs;
}

/** What applying one record does to its key. */
export type Decision =
  | { kind: 'put'; entry: Entry }
  | { kind: 'delete' }
  | { kind: 'reject'; reason: RejectReason }
  | { kind: 'duplicate'; of: string }
  | { kind: 'noop' };

/** Where a record sits in the log, and what the store knows that the decision depends on. */
export interface DecideContext {
  partition: number;
  offset: number;
  /**
   * Log time of the record (ms). The store passes the partition's log clock: the largest record CreateTime
   * seen so far, so that time never runs backwards within a partition even if producers' clocks disagree.
   */
  timestamp: number;
  /**
   * The record's own log append time (ms), which a strict write's deadline is judged by: the same figure
   * the broker returned to the writer, so the writer and every replica agree. `timestamp` when absent.
   */
  appendTime?: number | undefined;
  /**
   * The first write to the same key with the same idempotency key, if the store has it, and its request
   * fingerprint (null for entries from before fingerprints were kept: treated as matching). Older than
   * IDEM_WINDOW_MS of log time: ignored.
   */
  seenIdem?: (Remembered & { fp: string | null }) | undefined;
  /** The first record on this partition with the same write id, if any. Older than WID_WINDOW_MS: ignored. */
  seenWid?: Remembered | undefined;
  /**
   * Maps an If-Match version to the write it stands for: a version the client got for a copy that was applied
   * as a duplicate names the original. Identity when absent.
   */
  resolveVersion?: ((version: string) => string) | undefined;
  /** Memory windows; the defaults (IDEM_WINDOW_MS, WID_WINDOW_MS) when absent. */
  windows?: MemoryWindows | undefined;
}

/** True if `entry` exists at log time `t`. Expiry is judged by log time, never by the wall clock. */
export function isLive(entry: Entry | undefined, t: number): entry is Entry {
  return entry !== undefined && (entry.expiresAt === null || entry.expiresAt > t);
}

/**
 * Decides what a record does, given the key's current entry (expired or not) — a pure function of the log,
 * so every replica reaches the same verdict. Order: invalid → heartbeat → second copy of a record (same wid) →
 * idempotent retry (same key and fingerprint: duplicate; another request: idempotency_key_reused) → conditions.
 */
export function decide(current: Entry | undefined, rec: DecodedRecord, ctx: DecideContext): Decision {
  if (rec.op === 'invalid') return { kind: 'reject', reason: 'invalid_record' };
  if (rec.op === 'hb') return { kind: 'noop' };
  // A batch part is decided with the rest of its batch (decideBatch); met on its own, it is malformed.
  if (rec.op === 'tx') return { kind: 'reject', reason: 'invalid_record' };
  // A copy of a record already applied (a producer retry appended it twice) is the same write: it gets the
  // first copy's outcome and must not be decided again (a conditional copy would fail its own condition).
  const windows = ctx.windows ?? { idemMs: IDEM_WINDOW_MS, widMs: WID_WINDOW_MS };
  const wid = ctx.seenWid;
  if (wid !== undefined && remembers(wid.at, ctx.timestamp, windows.widMs)) {
    return { kind: 'duplicate', of: wid.version };
  }
  // A strict write that reached the log after its deadline was answered (or will be) as not done in time: it
  // must not apply now and overwrite what other writers did since. Its idempotency key stays free for a retry.
  if (rec.dl !== undefined && (ctx.appendTime ?? ctx.timestamp) > rec.dl) {
    return { kind: 'reject', reason: 'deadline_passed' };
  }
  // A retry of a write already in the log gets the first attempt's outcome, whatever the state is now — if it
  // is the same request. The same key for another request changes nothing (IETF Idempotency-Key draft: 422).
  const seen = ctx.seenIdem;
  if (rec.idem !== undefined && seen !== undefined && remembers(seen.at, ctx.timestamp, windows.idemMs)) {
    if (seen.fp !== null && seen.fp !== requestFingerprint(rec)) {
      return { kind: 'reject', reason: 'idempotency_key_reused' };
    }
    return { kind: 'duplicate', of: seen.version };
  }

  const live = isLive(current, ctx.timestamp) ? current : undefined;
  if (rec.ifNoneMatch === true && live !== undefined) return { kind: 'reject', reason: 'already_exists' };
  if (rec.ifMatch !== undefined) {
    if (live === undefined) return { kind: 'reject', reason: 'not_found' };
    const named = rec.ifMatch === '*' ? '*' : (ctx.resolveVersion?.(rec.ifMatch) ?? rec.ifMatch);
    if (named !== '*' && named !== live.version) return { kind: 'reject', reason: 'version_mismatch' };
  }
  if (rec.op === 'del') return { kind: 'delete' };
  return {
    kind: 'put',
    entry: {
      key: rec.key,
      value: JSON.stringify(rec.value),
      version: formatVersion(ctx.partition, ctx.offset),
      updatedAt: ctx.timestamp,
      expiresAt: rec.ttlMs === undefined ? null : ctx.timestamp + rec.ttlMs,
    },
  };
}

/** One part of a batch as the store hands it to decideBatch: the decoded part and where it sits in the log. */
export interface BatchPart {
  partition: number;
  offset: number;
  /** The part's own log append time (its deadline is judged by it). */
  appendTime: number;
  /** The partition's log clock with this record applied (expiry and TTL are judged by it). */
  clock: number;
  rec: TxOp & { key: string };
}

/** What a whole batch does: every item's effect, or one verdict that rejects all of it. */
export type BatchDecision =
  | {
      kind: 'apply';
      effects: Array<{ part: number; key: string; decision: Decision & { kind: 'put' | 'delete' } }>;
    }
  | { kind: 'reject'; reason: RejectReason; op?: number };

/**
 * Decides an atomic batch — a pure function of its parts and the current entries of its keys, so every replica
 * reaches the same verdict. Each item is judged as a single write at its part's log position (its key's
 * partition is at that position when the batch applies); if any item fails, or the parts do not form one
 * well-made batch, nothing applies. `conflict`: the sequencer found the batch in a wait-for cycle.
 */
export function decideBatch(
  parts: readonly BatchPart[],
  current: (key: string) => Entry | undefined,
  opts: {
    partitionOf: (key: string) => number;
    conflict?: boolean;
    resolveVersion?: ((partition: number, version: string) => string) | undefined;
  },
): BatchDecision {
  const first = parts[0];
  if (first === undefined) return { kind: 'reject', reason: 'invalid_record' };
  const head = first.rec;
  const seenIdx = new Set<number>();
  const seenKeys = new Set<string>();
  const partitions = parts.map((p) => p.partition);
  const wellMade =
    partitions.length === head.parts.length &&
    partitions.every((p, i) => p === head.parts[i]) &&
    parts.every(
      (p) =>
        p.rec.tx === head.tx &&
        p.rec.n === head.n &&
        p.rec.dl === head.dl &&
        p.rec.parts.length === head.parts.length &&
        p.rec.parts.every((q, i) => q === head.parts[i]) &&
        p.rec.items.every((it) => {
          const fresh =
            !seenIdx.has(it.i) && !seenKeys.has(it.key) && opts.partitionOf(it.key) === p.partition;
          seenIdx.add(it.i);
          seenKeys.add(it.key);
          return fresh;
        }),
    ) &&
    seenIdx.size === head.n;
  if (!wellMade) return { kind: 'reject', reason: 'invalid_record' };
  if (opts.conflict) return { kind: 'reject', reason: 'batch_conflict' };
  if (head.dl !== undefined && parts.some((p) => p.appendTime > head.dl!)) {
    return { kind: 'reject', reason: 'deadline_passed' };
  }
  const judged: Array<{ i: number; part: number; key: string; decision: Decision }> = [];
  parts.forEach((p, part) => {
    for (const it of p.rec.items) {
      const single: DecodedRecord = {
        v: 1,
        key: it.key,
        wid: `${head.tx}#${it.i}`,
        ...(it.op === 'put'
          ? { op: 'put' as const, value: it.value, ...(it.ttlMs !== undefined ? { ttlMs: it.ttlMs } : {}) }
          : { op: 'del' as const }),
        ...(it.ifMatch !== undefined ? { ifMatch: it.ifMatch } : {}),
        ...(it.ifNoneMatch ? { ifNoneMatch: true as const } : {}),
      };
      judged.push({
        i: it.i,
        part,
        key: it.key,
        decision: decide(current(it.key), single, {
          partition: p.partition,
          offset: p.offset,
          timestamp: p.clock,
          resolveVersion: opts.resolveVersion ? (v) => opts.resolveVersion!(p.partition, v) : undefined,
        }),
      });
    }
  });
  judged.sort((a, b) => a.i - b.i);
  for (const j of judged) {
    if (j.decision.kind === 'reject') return { kind: 'reject', reason: j.decision.reason, op: j.i };
  }
  return {
    kind: 'apply',
    effects: judged.map((j) => ({
      part: j.part,
      key: j.key,
      decision: j.decision as Decision & { kind: 'put' | 'delete' },
    })),
  };
}
