/**
 * Helpers shared by the history checkers: op selection, version offsets, and a capped error list.
 * Everything here is pure: no I/O, no clocks.
 */
import { parseVersion } from '../../core/version.js';
import type { CheckResult, FaultWindow, History, ReadOp, WriteOp } from '../history.js';

/** Most counter-examples a checker lists; the full count goes into stats.violations. */
export const MAX_ERRORS = 10;

/** Options every checker accepts (each reads only what it needs). */
export interface CheckOptions {
  /** All-brokers outage windows; default: faults whose kind is 'all-brokers-down'. */
  outageWindows?: Array<Pick<FaultWindow, 'startAt' | 'endAt'> & { kind?: string }>;
  /** Largest share (0..1) of failed writes per fault window: one figure, or per window kind. */
  maxFailedWrites?: number | Record<string, number>;
  /** Search budget per key for the linearizability checker (default 200 000 steps). */
  linearizableMaxSteps?: number;
  /** Set false to skip the linearizability checker's quick stale-read pass (to exercise the search alone). */
  linearizableQuickCheck?: boolean;
}

/** Collects violations, keeping only the first MAX_ERRORS messages but counting all. */
export class Findings {
  readonly errors: string[] = [];
  count = 0;

  /** Records one violation. */
  add(message: string): void {
    this.count++;
    if (this.errors.length < MAX_ERRORS) this.errors.push(message);
  }
}

/** Builds a CheckResult: invalid if any violation, else `fallback` (true, or 'unknown' when nothing could be judged). */
export function verdict(
  name: string,
  findings: Findings,
  stats: Record<string, number>,
  fallback: true | 'unknown' = true,
): CheckResult {
  return {
    name,
    valid: findings.count > 0 ? false : fallback,
    errors: findings.errors,
    stats: { ...stats, violations: findings.count },
  };
}

/** The log offset of a version string, or undefined if absent or malformed. */
export function offsetOf(version: string | undefined): number | undefined {
  return version === undefined ? undefined : parseVersion(version)?.offset;
}

/** All writes of a history. */
export function writesOf(h: History): WriteOp[] {
  return h.ops.filter((op): op is WriteOp => op.kind === 'write');
}

/** All reads of a history. */
export function readsOf(h: History): ReadOp[] {
  return h.ops.filter((op): op is ReadOp => op.kind === 'read');
}

/** An acknowledged write: it happened and changed the key (a 412-rejected conditional write did not). */
export function isAcked(w: WriteOp): boolean {
  return w.outcome === 'ok' && w.verdict !== 'rejected';
}

/** A write that definitely did not change the key. */
export function isFailed(w: WriteOp): boolean {
  return w.outcome === 'fail' || w.verdict === 'rejected';
}

/** Groups items by a string key, keeping input order inside each group. */
export function groupBy<T>(items: readonly T[], keyOf: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/**
 * Values (non-null) that any ok read or node's final state showed, with the version shown alongside
 * (the first one, if any): evidence that the write took effect, and where in the log it sits.
 */
export function observedValues(h: History): Map<number, string | undefined> {
  const seen = new Map<number, string | undefined>();
  const note = (value: number | null | undefined, version: string | undefined) => {
    if (typeof value === 'number' && seen.get(value) === undefined) seen.set(value, version);
  };
  for (const r of readsOf(h)) if (r.outcome === 'ok') note(r.value, r.version);
  for (const f of h.finals) for (const v of Object.values(f.values)) if (v) note(v.value, v.version);
  return seen;
}

/**
 * Per key, the writes known to have changed it, with their offsets, ascending: acknowledged writes, plus
 * unknown-outcome writes that some read or node showed (value seen, or for a delete the node's write log
 * says applied). A write's offset is its version, or else the version a reader saw with its (unique)
 * value. Writes of unknown fate are left out: counting them could accuse a read of missing a write that
 * never happened.
 */
export function appliedWritesByKey(h: History): Map<string, Array<{ op: WriteOp; offset: number }>> {
  const seen = observedValues(h);
  const appliedSomewhere = (v: string) => h.finals.some((f) => f.writes[v]?.status === 'applied');
  const out = new Map<string, Array<{ op: WriteOp; offset: number }>>();
  for (const w of writesOf(h)) {
    if (isFailed(w)) continue;
    const version = w.version ?? (w.value === null ? undefined : seen.get(w.value));
    const offset = offsetOf(version);
    if (offset === undefined || version === undefined) continue;
    const known =
      isAcked(w) ||
      (w.value !== null && seen.has(w.value)) ||
      (w.value === null && appliedSomewhere(version));
    if (!known) continue;
    const list = out.get(w.key) ?? [];
    list.push({ op: w, offset });
    out.set(w.key, list);
  }
  for (const list of out.values()) list.sort((a, b) => a.offset - b.offset);
  return out;
}

/**
 * Whether some delete of `key` may sit in the log strictly between offsets `lo` and `hi` (exclusive):
 * a delete that did not definitely fail whose version is unknown or in range. Used to excuse a 404.
 */
export function mayDeleteBetween(writes: readonly WriteOp[], key: string, lo: number, hi: number): boolean {
  return writes.some((w) => {
    if (w.key !== key || w.value !== null || isFailed(w)) return false;
    const o = offsetOf(w.version);
    return o === undefined || (o > lo && o < hi);
  });
}

/** Milliseconds since the history started, for readable messages. */
export function rel(h: History, t: number | undefined): string {
  return t === undefined ? '∞' : `+${Math.round(t - h.startAt)}ms`;
}
