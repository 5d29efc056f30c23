/**
 * Cheap necessary conditions for a linearizable register with log-ordered writes, checked before the
 * search: each one names a read no linearization can explain, in O(n log n) instead of an exhaustive
 * search (which on a long invalid history would only run out of budget).
 */
import type { RegOp } from './wgl.js';

/** A read that cannot be linearized, with the write(s) proving it. */
export interface StaleRead {
  read: RegOp;
  reason: string;
}

/**
 * Reads that no linearization explains: a value no write wrote, a value written only after the read
 * ended, or a value (or a 404) older than a log-ordered write that completed before the read began.
 */
export function staleReads(ops: readonly RegOp[]): StaleRead[] {
  const writes = ops.filter((o) => o.kind === 'write');
  const byValue = new Map<number, RegOp>();
  for (const w of writes) if (w.value !== null) byValue.set(w.value, w);
  const latestBefore = latestCompletedOrdered(writes);
  const out: StaleRead[] = [];
  for (const r of ops) {
    if (r.kind !== 'read') continue;
    const reason =
      r.value === null ? staleNull(r, writes, latestBefore) : staleValue(r, byValue, latestBefore);
    if (reason) out.push({ read: r, reason });
  }
  return out;
}

type Latest = (t: number) => RegOp | undefined;

function staleValue(r: RegOp, byValue: Map<number, RegOp>, latestBefore: Latest): string | undefined {
  const w = byValue.get(r.value as number);
  if (!w) return 'no write (that did not fail) wrote that value';
  if (w.call > r.ret) return `write #${w.id} of that value began only after the read ended`;
  const newer = latestBefore(r.call);
  if (w.order !== undefined && newer && (newer.order as number) > w.order) {
    return `write #${newer.id} (later in the log than write #${w.id}) completed before the read began`;
  }
  return undefined;
}

function staleNull(r: RegOp, writes: RegOp[], latestBefore: Latest): string | undefined {
  const newer = latestBefore(r.call);
  if (!newer || newer.value === null) return undefined;
  // A delete that may sit after it in the log, begun before the read ended, could explain the 404.
  const excuse = writes.some(
    (d) =>
      d.value === null && d.call <= r.ret && (d.order === undefined || d.order > (newer.order as number)),
  );
  return excuse ? undefined : `write #${newer.id} completed before the read began and no later delete exists`;
}

/** For a time t, the log-ordered write with the highest offset among those completed before t. */
function latestCompletedOrdered(writes: RegOp[]): Latest {
  const done = writes
    .filter((w) => w.order !== undefined && Number.isFinite(w.ret))
    .sort((a, b) => a.ret - b.ret);
  const best: RegOp[] = [];
  for (const w of done) {
    const prev = best[best.length - 1];
    best.push(prev && (prev.order as number) > (w.order as number) ? prev : w);
  }
  return (t) => {
    // Binary search: the last write with ret < t (strictly: a write ending as the read begins may overlap it).
    let lo = 0;
    let hi = done.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((done[mid] as RegOp).ret < t) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? best[lo - 1] : undefined;
  };
}
