/** Terse builders for hand-made histories in the checker tests. */
import type { History, HistoryOp, NodeFinal, ReadOp, WriteOp } from '../../../src/chaos/history.js';

let nextId = 1;

/** A write (defaults: ok, key 'k', process 0, interval [0, 1]). */
export function w(p: Partial<WriteOp> & { value: number | null }): WriteOp {
  return {
    kind: 'write',
    id: nextId++,
    process: 0,
    node: 'n1',
    key: 'k',
    invokeAt: 0,
    completeAt: 1,
    outcome: 'ok',
    ...p,
  };
}

/** A read (defaults: ok strong read of key 'k' on partition 0, interval [0, 1]). */
export function r(p: Partial<ReadOp>): ReadOp {
  return {
    kind: 'read',
    id: nextId++,
    process: 0,
    node: 'n1',
    key: 'k',
    consistency: 'strong',
    partition: 0,
    invokeAt: 0,
    completeAt: 1,
    outcome: 'ok',
    ...p,
  };
}

/** A history over `ops` (one partition, no faults, no finals unless given). */
export function hist(ops: HistoryOp[], extra: Partial<History> = {}): History {
  const end = Math.max(0, ...ops.map((o) => o.completeAt ?? o.invokeAt));
  return { ops, faults: [], finals: [], partitions: 1, startAt: 0, endAt: end + 1, ...extra };
}

/** A node's settled report (defaults: nothing reported, partition 0 caught up at 0). */
export function fin(node: string, p: Partial<NodeFinal> = {}): NodeFinal {
  return {
    node,
    digests: [{ partition: 0, appliedOffset: 0, digest: 'd0' }],
    values: {},
    writes: {},
    endOffsets: { 0: 0 },
    ...p,
  };
}

/** `writes` map marking each version applied for key `key`. */
export function applied(key: string, ...versions: string[]): NodeFinal['writes'] {
  return Object.fromEntries(versions.map((v) => [v, { status: 'applied', key }]));
}
