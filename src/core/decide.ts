import type { DecodedRecord } from './record.js';
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
export type RejectReason = 'version_mismatch' | 'already_exists' | 'not_found' | 'invalid_record';

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
  /** Version of an earlier write to the same key with the same idempotency key, if any. */
  seenIdem?: string | undefined;
}

/** True if `entry` exists at log time `t`. Expiry is judged by log time, never by the wall clock. */
export function isLive(entry: Entry | undefined, t: number): entry is Entry {
  return entry !== undefined && (entry.expiresAt === null || entry.expiresAt > t);
}

/**
 * Decides what a record does, given the key's current entry (expired or not) — a pure function of the log,
 * so every replica reaches the same verdict. Order: invalid → heartbeat → idempotent retry → conditions.
 */
export function decide(current: Entry | undefined, rec: DecodedRecord, ctx: DecideContext): Decision {
  if (rec.op === 'invalid') return { kind: 'reject', reason: 'invalid_record' };
  if (rec.op === 'hb') return { kind: 'noop' };
  // A retry of a write already in the log gets the first attempt's outcome, whatever the state is now.
  if (rec.idem !== undefined && ctx.seenIdem !== undefined) return { kind: 'duplicate', of: ctx.seenIdem };

  const live = isLive(current, ctx.timestamp) ? current : undefined;
  if (rec.ifNoneMatch === true && live !== undefined) return { kind: 'reject', reason: 'already_exists' };
  if (rec.ifMatch !== undefined) {
    if (live === undefined) return { kind: 'reject', reason: 'not_found' };
    if (rec.ifMatch !== '*' && rec.ifMatch !== live.version)
      return { kind: 'reject', reason: 'version_mismatch' };
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
