/** Checker `no-lost-writes`: every acknowledged write survives on every node after settling. */
import type { CheckResult, History, NodeFinal, WriteOp } from '../history.js';
import { Findings, groupBy, isAcked, mayDeleteBetween, offsetOf, verdict, writesOf } from './common.js';

const NAME = 'no-lost-writes';

/** Every acknowledged write is applied on every node, and no node's final value is older than it. */
export function noLostWrites(h: History): CheckResult {
  const writes = writesOf(h);
  const acked = writes.filter(isAcked);
  const f = new Findings();
  const versioned = acked.filter((w) => offsetOf(w.version) !== undefined);
  const stats = { acknowledged: acked.length, versioned: versioned.length, nodes: h.finals.length };
  // Nothing settled was reported: the writes may be fine, but we cannot tell.
  if (h.finals.length === 0) return verdict(NAME, f, stats, acked.length > 0 ? 'unknown' : true);
  for (const node of h.finals) {
    for (const w of versioned) checkWriteLog(node, w, f);
    for (const [key, ws] of groupBy(versioned, (w) => w.key)) checkFinalValue(node, key, ws, writes, f);
  }
  return verdict(NAME, f, stats);
}

/** The node's write log must record the write as applied (or as a duplicate of it) for the same key. */
function checkWriteLog(node: NodeFinal, w: WriteOp, f: Findings): void {
  const v = w.version as string;
  const entry = node.writes[v];
  if (!entry) {
    f.add(
      `write #${w.id} (key ${w.key}, version ${v}) acknowledged but node ${node.node} reports nothing for it`,
    );
  } else if (entry.status !== 'applied' && entry.status !== 'duplicate') {
    f.add(
      `write #${w.id} (key ${w.key}, version ${v}) acknowledged but node ${node.node} says ${entry.status}`,
    );
  } else if (entry.key !== null && entry.key !== w.key) {
    f.add(`write #${w.id} (key ${w.key}, version ${v}): node ${node.node} has it under key ${entry.key}`);
  }
}

/** The node's final version of the key must be at least the newest acknowledged write to it. */
function checkFinalValue(node: NodeFinal, key: string, acked: WriteOp[], all: WriteOp[], f: Findings): void {
  const newest = acked.reduce((a, b) => ((offsetOf(b.version) ?? -1) > (offsetOf(a.version) ?? -1) ? b : a));
  const newestOff = offsetOf(newest.version) as number;
  const fin = node.values[key];
  if (fin === undefined) {
    f.add(`node ${node.node} reported no final value for key ${key} (acknowledged write #${newest.id})`);
    return;
  }
  if (fin === null) {
    // Absent is right if the newest acknowledged write is a delete, or some later delete may exist.
    if (newest.value !== null && !mayDeleteBetween(all, key, newestOff, Number.POSITIVE_INFINITY)) {
      f.add(
        `key ${key} is absent on node ${node.node} but write #${newest.id} (value ${newest.value}, ${newest.version}) was acknowledged and no later delete exists`,
      );
    }
    return;
  }
  const finOff = offsetOf(fin.version);
  if (finOff === undefined || finOff < newestOff) {
    f.add(
      `key ${key} on node ${node.node} is at ${fin.version} (value ${fin.value}), older than acknowledged write #${newest.id} at ${newest.version}`,
    );
    return;
  }
  // Same version must mean same value: values are unique per write.
  const same = acked.find((w) => w.version === fin.version);
  if (same && same.value !== fin.value) {
    f.add(
      `key ${key} on node ${node.node} holds value ${fin.value} at ${fin.version}, but write #${same.id} wrote ${same.value} there`,
    );
  }
}
