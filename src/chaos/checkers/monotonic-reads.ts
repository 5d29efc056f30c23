/** Checker `monotonic-reads`: within a session, session and strong reads of a key never go back in time. */
import type { CheckResult, History, ReadOp } from '../history.js';
import { Findings, groupBy, mayDeleteBetween, offsetOf, verdict, writesOf } from './common.js';

const NAME = 'monotonic-reads';

/**
 * Per process and key, in program order, an ok session or strong read never returns a lower version
 * offset than an earlier one did; a 404 after a seen version is a regression unless a delete may follow it.
 */
export function monotonicReads(h: History): CheckResult {
  const writes = writesOf(h);
  const reads = h.ops.filter(
    (op): op is ReadOp =>
      op.kind === 'read' &&
      op.outcome === 'ok' &&
      (op.consistency === 'session' || op.consistency === 'strong'),
  );
  const f = new Findings();
  const groups = groupBy(reads, (r) => `${r.process}\u0000${r.key}`);
  for (const rs of groups.values()) {
    // A process is sequential, so invocation order is program order.
    rs.sort((a, b) => a.invokeAt - b.invokeAt || a.id - b.id);
    let high: ReadOp | undefined;
    let highOff = -1;
    for (const r of rs) {
      const off = offsetOf(r.version);
      if (off === undefined) {
        const excused =
          !high || r.version !== undefined || mayDeleteBetween(writes, r.key, highOff, Infinity);
        if (!excused) f.add(regression(r, high as ReadOp));
        continue;
      }
      if (high && off < highOff) f.add(regression(r, high));
      else if (off > highOff) {
        high = r;
        highOff = off;
      }
    }
  }
  return verdict(NAME, f, { reads: reads.length, sequences: groups.size });
}

function regression(r: ReadOp, earlier: ReadOp): string {
  const saw = r.version === undefined ? '404' : r.version;
  return `process ${r.process}, key ${r.key}: read #${r.id} (${r.consistency}, node ${r.node}) saw ${saw} after read #${earlier.id} saw ${earlier.version}`;
}
