/** Checker `availability`: write failure shares and recovery times per fault window (a budget makes it pass/fail). */
import type { CheckResult, FaultWindow, History, WriteOp } from '../history.js';
import { type CheckOptions, Findings, verdict, writesOf } from './common.js';

const NAME = 'availability';
/** Budget key for writes outside every fault window. */
export const OUTSIDE = 'outside';

interface Tally {
  writes: number;
  failed: number;
  unknown: number;
}

/**
 * Per fault window (writes invoked inside it) and outside all windows: shares of failed and unknown
 * writes; per window, recovery time = window start → completion of the first ok write after the last
 * unsuccessful one (before the next window), 0 if none failed, -1 if never. A 412 is an answer, not an
 * outage, so it counts as served. With `maxFailedWrites`, a window whose failed share exceeds it is invalid.
 */
export function availability(h: History, opts: CheckOptions = {}): CheckResult {
  const writes = writesOf(h);
  const windows = [...h.faults].sort((a, b) => a.startAt - b.startAt);
  const f = new Findings();
  const stats: Record<string, number> = { windows: windows.length, maxRecoveryMs: 0, notRecovered: 0 };
  windows.forEach((w, i) => {
    const tally = tallyOf(writes.filter((x) => x.invokeAt >= w.startAt && x.invokeAt <= w.endAt));
    const recovery = recoveryMs(writes, w, horizonOf(windows, w, h.endAt));
    record(stats, `w${i}.${w.kind}`, tally);
    stats[`w${i}.${w.kind}.recoveryMs`] = recovery;
    if (recovery < 0) stats.notRecovered = (stats.notRecovered ?? 0) + 1;
    else stats.maxRecoveryMs = Math.max(stats.maxRecoveryMs ?? 0, recovery);
    overBudget(f, `window ${i} (${w.kind})`, tally, budgetFor(opts, w.kind));
  });
  const outside = tallyOf(
    writes.filter((x) => !windows.some((w) => x.invokeAt >= w.startAt && x.invokeAt <= w.endAt)),
  );
  record(stats, OUTSIDE, outside);
  const outsideBudget = typeof opts.maxFailedWrites === 'object' ? opts.maxFailedWrites[OUTSIDE] : undefined;
  overBudget(f, 'outside fault windows', outside, outsideBudget);
  return verdict(NAME, f, stats);
}

/** A write the cluster did not serve: a definite failure other than a 412 verdict, or no known outcome. */
function unserved(w: WriteOp): boolean {
  return (w.outcome === 'fail' && w.verdict !== 'rejected') || w.outcome === 'unknown';
}

function tallyOf(ws: WriteOp[]): Tally {
  const failed = ws.filter((w) => w.outcome === 'fail' && w.verdict !== 'rejected').length;
  return { writes: ws.length, failed, unknown: ws.filter((w) => w.outcome === 'unknown').length };
}

function record(stats: Record<string, number>, prefix: string, t: Tally): void {
  stats[`${prefix}.writes`] = t.writes;
  stats[`${prefix}.failed`] = t.failed;
  stats[`${prefix}.unknown`] = t.unknown;
  stats[`${prefix}.failedShare`] = t.writes > 0 ? t.failed / t.writes : 0;
  stats[`${prefix}.unknownShare`] = t.writes > 0 ? t.unknown / t.writes : 0;
}

/** Where a window's recovery stops being its own: the next window starting after it ends, or the run's end. */
function horizonOf(windows: FaultWindow[], w: FaultWindow, end: number): number {
  const next = windows.find((x) => x.startAt > w.endAt);
  return next ? next.startAt : end;
}

function recoveryMs(writes: WriteOp[], w: FaultWindow, horizon: number): number {
  const span = writes.filter((x) => x.invokeAt >= w.startAt && x.invokeAt < horizon);
  const bad = span.filter(unserved);
  if (bad.length === 0) return 0;
  const lastBad = Math.max(...bad.map((x) => x.completeAt ?? x.invokeAt));
  const firstOk = span
    .filter((x) => !unserved(x) && x.completeAt !== undefined && x.completeAt > lastBad)
    .reduce((m, x) => Math.min(m, x.completeAt as number), Infinity);
  return firstOk === Infinity ? -1 : firstOk - w.startAt;
}

function budgetFor(opts: CheckOptions, kind: string): number | undefined {
  const b = opts.maxFailedWrites;
  return typeof b === 'number' ? b : b?.[kind];
}

function overBudget(f: Findings, where: string, t: Tally, budget: number | undefined): void {
  if (budget === undefined || t.writes === 0) return;
  const share = t.failed / t.writes;
  if (share > budget) {
    f.add(
      `${where}: ${t.failed}/${t.writes} writes failed (${(share * 100).toFixed(1)}%), budget ${(budget * 100).toFixed(1)}%`,
    );
  }
}
