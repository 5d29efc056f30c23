import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../../../src/core/digest.js';
import { encodeKey, encodeRecord, type WriteOp } from '../../../src/core/record.js';
import type { LogRecord, StoreDump } from '../../../src/store/replica-store.js';

/** A fresh temp directory; call the returned cleanup in afterEach. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = join(tmpdir(), `lagoon-store-${randomUUID()}`);
  mkdirSync(dir, { recursive: true });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A log record for `op` at `offset`; heartbeats get a null key. */
export function rec(offset: number, timestamp: number, key: string | null, op: WriteOp): LogRecord {
  return { offset, timestamp, key: key === null ? null : encodeKey(key), value: encodeRecord(op) };
}

/** Every write gets its own write id, as the API gives it: equal wids mean two copies of one record. */
let widSeq = 0;
const nextWid = () => `test-${++widSeq}`;

export const put = (value: unknown, extra: Partial<Extract<WriteOp, { op: 'put' }>> = {}): WriteOp => ({
  v: 1,
  op: 'put',
  value,
  wid: nextWid(),
  ...extra,
});
export const del = (extra: Partial<Extract<WriteOp, { op: 'del' }>> = {}): WriteOp => ({
  v: 1,
  op: 'del',
  wid: nextWid(),
  ...extra,
});
export const hb = (node = 'n1'): WriteOp => ({ v: 1, op: 'hb', node });

/** Per-partition digests recomputed from scratch over a dump's kv rows. */
export function recomputeDigests(dump: StoreDump): Map<number, string> {
  const out = new Map<number, string>();
  for (const p of dump.partitions)
    out.set(p.partition, digestOf(dump.kv.filter((r) => r.partition === p.partition)));
  return out;
}
