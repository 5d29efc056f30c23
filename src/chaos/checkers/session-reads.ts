/** Checker `session-reads`: a session read is never older than the token it sent (read-your-writes). */
import type { CheckResult, History, ReadOp, WriteOp } from '../history.js';
import { appliedWritesByKey, Findings, mayDeleteBetween, offsetOf, verdict, writesOf } from './common.js';

const NAME = 'session-reads';

type Applied = Array<{ op: WriteOp; offset: number }>;

/**
 * A session read whose token requires offset T on the key's partition (T = next offset to apply) must
 * reflect every write to the key known to be applied below T: no such write lies strictly between the
 * read's version and T. A 404 is offset -1, excused when the newest such write is a delete or some
 * delete may lie after it, below what the read could have seen (the token it got back).
 */
export function sessionReads(h: History): CheckResult {
  const applied = appliedWritesByKey(h);
  const writes = writesOf(h);
  const f = new Findings();
  let checked = 0;
  for (const r of h.ops) {
    if (r.kind !== 'read' || r.consistency !== 'session' || r.outcome !== 'ok') continue;
    const required = r.sessionIn?.[r.partition];
    if (required === undefined) continue;
    checked++;
    const missed = missedWrite(r, required, applied.get(r.key) ?? [], writes);
    if (missed) {
      const saw = r.version === undefined ? '404' : `${r.version} (value ${r.value})`;
      f.add(
        `session read #${r.id} (node ${r.node}, key ${r.key}) saw ${saw} but its token required ${r.partition}-${required}; write #${missed.op.id} at ${missed.op.version} was already applied`,
      );
    }
  }
  return verdict(NAME, f, { sessionReads: checked });
}

/** The newest applied write the read should have reflected but did not, if any. */
function missedWrite(r: ReadOp, required: number, applied: Applied, writes: WriteOp[]) {
  const below = applied.filter((a) => a.offset < required);
  const newest = below[below.length - 1];
  if (!newest) return undefined;
  const readOff = r.version === undefined ? -1 : (offsetOf(r.version) ?? -1);
  if (readOff >= newest.offset) return undefined;
  if (r.version === undefined) {
    // A 404 is current if the newest applied write is a delete, or a delete of unknown place may follow it.
    if (newest.op.value === null) return undefined;
    // The read may have seen state beyond its token (up to the token it got back): a delete applied
    // above the token excuses the 404 too.
    const seenUpTo = Math.max(required, r.sessionOut?.[r.partition] ?? Number.POSITIVE_INFINITY);
    if (mayDeleteBetween(writes, r.key, newest.offset, seenUpTo)) return undefined;
  }
  return newest;
}
