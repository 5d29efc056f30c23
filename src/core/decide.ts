import { type DecodedRecord, requestFingerprint } from './record.js';
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
  | 'deadline_passed';

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
