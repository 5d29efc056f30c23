/** Checker `linearizable`: strong reads and writes of each key form a linearizable register history. */
import type { CheckResult, History, ReadOp, WriteOp } from '../history.js';
import { appliedWritesByKey, type CheckOptions, groupBy, isFailed, MAX_ERRORS, rel } from './common.js';
import { staleReads } from './stale-reads.js';
import { type RegOp, searchRegister } from './wgl.js';

const NAME = 'linearizable';
const DEFAULT_MAX_STEPS = 200_000;

/**
 * Per key (single-key linearizability composes), a WGL search over ok strong reads and the writes: ok
 * writes take effect within their interval, unknown ones any time after invocation or never, failed
 * ones never; writes known to be in the log take effect in log order. Keys without strong reads are skipped.
 * A quick pass for reads no order can explain (stale-reads.ts) runs first and spares the search.
 */
export function linearizable(h: History, opts: CheckOptions = {}): CheckResult {
  const maxSteps = opts.linearizableMaxSteps ?? DEFAULT_MAX_STEPS;
  const inLog = logOrder(h);
  const relevant = h.ops.filter((op): op is WriteOp | ReadOp =>
    op.kind === 'write' ? !isFailed(op) : op.consistency === 'strong' && op.outcome === 'ok',
  );
  const stats = {
    keys: 0,
    staleReads: 0,
    keysValid: 0,
    keysInvalid: 0,
    keysUnknown: 0,
    ops: 0,
    strongReads: 0,
    droppedWrites: 0,
    steps: 0,
  };
  const errors: string[] = [];
  const note = (m: string) => errors.length < MAX_ERRORS && errors.push(m);
  for (const [key, ops] of groupBy(relevant, (op) => op.key)) {
    const reg = toRegisterOps(ops, inLog);
    if (reg.reads === 0) continue;
    stats.keys++;
    stats.strongReads += reg.reads;
    stats.ops += reg.ops.length;
    stats.droppedWrites += reg.dropped;
    // Obvious violations first: they need no search and make a clearer counter-example.
    const stale = opts.linearizableQuickCheck === false ? [] : staleReads(reg.ops);
    if (stale.length > 0) {
      stats.keysInvalid++;
      stats.staleReads += stale.length;
      for (const s of stale.slice(0, 3)) {
        note(
          `key ${key}: not linearizable: ${describe(s.read)} [${rel(h, s.read.call)}, ${rel(h, s.read.ret)}]: ${s.reason}`,
        );
      }
      continue;
    }
    const r = searchRegister(reg.ops, null, maxSteps);
    stats.steps += r.steps;
    if (r.result === 'ok') stats.keysValid++;
    else if (r.result === 'unknown') {
      stats.keysUnknown++;
      note(`key ${key}: search gave up after ${r.steps} steps over ${reg.ops.length} ops`);
    } else {
      stats.keysInvalid++;
      const after = r.prefix.map(describe).join(', ') || 'nothing';
      note(
        `key ${key}: not linearizable: ${describe(r.stuck)} [${rel(h, r.stuck.call)}, ${rel(h, r.stuck.ret)}] cannot follow ${after}`,
      );
    }
  }
  const valid = stats.keysInvalid > 0 ? false : stats.keysUnknown > 0 || stats.keys === 0 ? 'unknown' : true;
  return { name: NAME, valid, errors, stats };
}

/** Ids of writes known to sit in the log at their version's offset (acknowledged, or seen applied). */
function logOrder(h: History): Map<number, number> {
  const out = new Map<number, number>();
  for (const list of appliedWritesByKey(h).values()) {
    // Two ops claiming one offset (an idempotent replay answers with the first attempt's version): order neither.
    const count = new Map<number, number>();
    for (const a of list) count.set(a.offset, (count.get(a.offset) ?? 0) + 1);
    for (const a of list) if (count.get(a.offset) === 1) out.set(a.op.id, a.offset);
  }
  return out;
}

/**
 * Maps a key's ops to register ops. An unknown write whose value no strong read saw is dropped: taking
 * effect could only hide values from later reads, so "never" is always at least as good an explanation.
 */
function toRegisterOps(ops: Array<WriteOp | ReadOp>, inLog: Map<number, number>) {
  const readValues = new Set<number | null>();
  for (const op of ops) if (op.kind === 'read') readValues.add(op.value ?? null);
  const out: RegOp[] = [];
  let reads = 0;
  let dropped = 0;
  for (const op of ops) {
    const ret = op.outcome === 'ok' ? (op.completeAt ?? Infinity) : Infinity;
    if (op.kind === 'read') {
      reads++;
      out.push({ id: op.id, kind: 'read', value: op.value ?? null, call: op.invokeAt, ret });
      continue;
    }
    const order = inLog.get(op.id);
    const unknown = op.outcome !== 'ok';
    if (unknown && order === undefined && op.value !== null && !readValues.has(op.value)) {
      dropped++;
      continue;
    }
    out.push({
      id: op.id,
      kind: 'write',
      value: op.value,
      call: op.invokeAt,
      ret,
      ...(order !== undefined ? { order } : {}),
      ...(unknown && order === undefined ? { optional: true } : {}),
    });
  }
  return { ops: out, reads, dropped };
}

function describe(op: RegOp): string {
  const v = op.value === null ? 'nil' : op.value;
  return op.kind === 'read' ? `read #${op.id} → ${v}` : `write #${op.id} ← ${v}`;
}
