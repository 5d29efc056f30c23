/** Checker `convergence`: after settling, every replica is caught up and holds the same state. */
import type { CheckResult, History } from '../history.js';
import { Findings, verdict } from './common.js';

const NAME = 'convergence';

interface Row {
  node: string;
  applied: number;
  digest: string;
}

/** All nodes are caught up (applied = log end) on every partition, with identical digests at equal offsets. */
export function convergence(h: History): CheckResult {
  const f = new Findings();
  const stats = { nodes: h.finals.length, partitions: 0, lagging: 0, diverging: 0 };
  if (h.finals.length === 0) return verdict(NAME, f, stats, 'unknown');
  for (const p of partitionsOf(h)) {
    stats.partitions++;
    const rows = rowsOf(h, p, f);
    if (!rows) continue;
    // The log end as the most up-to-date node saw it: a node that saw an older end is not caught up.
    const end = Math.max(...h.finals.map((n) => n.endOffsets[p] ?? -1));
    const behind = rows.filter((r) => r.applied !== end);
    if (end < 0) {
      f.add(`partition ${p}: no node reported the log end offset`);
    } else if (behind.length > 0) {
      stats.lagging++;
      f.add(
        `partition ${p}: log end ${end}, but ${behind.map((r) => `${r.node} applied ${r.applied}`).join(', ')}`,
      );
    }
    if (divergesAtEqualOffsets(rows)) {
      stats.diverging++;
      f.add(
        `partition ${p}: digests differ: ${rows.map((r) => `${r.node}@${r.applied}=${r.digest}`).join(', ')}`,
      );
    }
  }
  return verdict(NAME, f, stats);
}

/** Partitions to judge: the topic's, or those any node reported if the count is missing. */
function partitionsOf(h: History): number[] {
  const seen = new Set<number>();
  for (let p = 0; p < h.partitions; p++) seen.add(p);
  for (const n of h.finals) for (const d of n.digests) seen.add(d.partition);
  return [...seen].sort((a, b) => a - b);
}

/** Each node's digest row for a partition; a node that reported none is itself a violation. */
function rowsOf(h: History, p: number, f: Findings): Row[] | undefined {
  const rows: Row[] = [];
  const missing: string[] = [];
  for (const n of h.finals) {
    const d = n.digests.find((x) => x.partition === p);
    if (d) rows.push({ node: n.node, applied: d.appliedOffset, digest: d.digest });
    else missing.push(n.node);
  }
  if (missing.length > 0) f.add(`partition ${p}: no digest from ${missing.join(', ')}`);
  return rows.length > 0 ? rows : undefined;
}

/** Whether two nodes at the same applied offset report different digests. */
function divergesAtEqualOffsets(rows: Row[]): boolean {
  const byOffset = new Map<number, string>();
  for (const r of rows) {
    const d = byOffset.get(r.applied);
    if (d !== undefined && d !== r.digest) return true;
    byOffset.set(r.applied, r.digest);
  }
  return false;
}
