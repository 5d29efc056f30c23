import { partitionOf } from './partitioner.js';
import { encodeRecord, type TxItem, type TxOp } from './record.js';
import type { TxTag } from './tx-sequencer.js';

/** One op of a batch request, already validated by the API. */
export interface BatchOpInput {
  op: 'put' | 'del';
  key: string;
  value?: unknown;
  ttlMs?: number | undefined;
  ifMatch?: string | undefined;
  ifNoneMatch?: true | undefined;
}

/** A batch part to produce: the record body for one partition, keyed by its first item's key. */
export interface BatchPartRecord {
  partition: number;
  key: string;
  body: TxOp;
}

/**
 * Splits a batch into its part records, one per partition its keys live in (partitions ascending, items in
 * request order within a part). The replicas put the items back together by their indexes.
 */
export function batchParts(
  tx: string,
  ops: readonly BatchOpInput[],
  partitions: number,
  deadline?: number,
): BatchPartRecord[] {
  const byPartition = new Map<number, TxItem[]>();
  ops.forEach((o, i) => {
    const p = partitionOf(o.key, partitions);
    const item: TxItem = {
      i,
      op: o.op,
      key: o.key,
      ...(o.op === 'put' ? { value: o.value, ...(o.ttlMs !== undefined ? { ttlMs: o.ttlMs } : {}) } : {}),
      ...(o.ifMatch !== undefined ? { ifMatch: o.ifMatch } : {}),
      ...(o.ifNoneMatch ? { ifNoneMatch: true as const } : {}),
    };
    const list = byPartition.get(p) ?? [];
    list.push(item);
    byPartition.set(p, list);
  });
  const parts = [...byPartition.keys()].sort((a, b) => a - b);
  return parts.map((p) => {
    const items = byPartition.get(p)!;
    return {
      partition: p,
      key: items[0]!.key,
      body: {
        v: 1,
        op: 'tx',
        tx,
        parts,
        n: ops.length,
        items,
        ...(deadline !== undefined ? { dl: deadline } : {}),
      },
    };
  });
}

/** The record value bytes of a part (encodeRecord checks it decodes). */
export function encodePart(part: BatchPartRecord): Buffer {
  return encodeRecord(part.body);
}

const TX_PREFIX = Buffer.from('{"v":1,"op":"tx",');

/**
 * Which batch a record belongs to, if it is a batch part: a pure function of the bytes (every replica tags alike).
 * Cheap for plain records (a prefix test: encodeRecord writes fields in a fixed order). A part whose body does
 * not parse is not tagged: it is applied as a plain record, which the store rejects as invalid.
 */
export function txTagOf(value: Buffer | null): TxTag | undefined {
  if (
    value === null ||
    value.length < TX_PREFIX.length ||
    !value.subarray(0, TX_PREFIX.length).equals(TX_PREFIX)
  ) {
    return undefined;
  }
  try {
    const o = JSON.parse(value.toString('utf8')) as { tx?: unknown; parts?: unknown };
    if (typeof o.tx !== 'string' || !Array.isArray(o.parts) || o.parts.length === 0) return undefined;
    if (!o.parts.every((p, i, a) => Number.isSafeInteger(p) && p >= 0 && (i === 0 || p > a[i - 1])))
      return undefined;
    return { tx: o.tx, parts: o.parts as number[] };
  } catch {
    return undefined;
  }
}
