/** Checker `no-failed-values`: nothing a definitely failed write wrote is ever visible. */
import type { CheckResult, History, WriteOp } from '../history.js';
import { Findings, isFailed, readsOf, verdict, writesOf } from './common.js';

const NAME = 'no-failed-values';

/** No ok read and no node's final state shows the value (or the version) of a write that definitely failed. */
export function noFailedValues(h: History): CheckResult {
  const failed = writesOf(h).filter(isFailed);
  // Values are unique per write, so a value names its write; a 412 also names its own log record.
  const byValue = new Map<number, WriteOp>();
  const byVersion = new Map<string, WriteOp>();
  for (const w of failed) {
    if (w.value !== null) byValue.set(w.value, w);
    if (w.version !== undefined) byVersion.set(w.version, w);
  }
  const f = new Findings();
  const reads = readsOf(h).filter((r) => r.outcome === 'ok');
  for (const r of reads) {
    const w = culprit(byValue, byVersion, r.value, r.version);
    if (w) f.add(`read #${r.id} (${r.consistency}, node ${r.node}, key ${r.key}) saw ${describe(w)}`);
  }
  let finalsChecked = 0;
  for (const node of h.finals) {
    for (const [key, fin] of Object.entries(node.values)) {
      finalsChecked++;
      const w = fin ? culprit(byValue, byVersion, fin.value, fin.version) : undefined;
      if (w) f.add(`node ${node.node} holds ${describe(w)} as the final state of key ${key}`);
    }
    for (const w of failed) {
      if (w.version !== undefined && node.writes[w.version]?.status === 'applied') {
        f.add(`node ${node.node} says ${describe(w)} was applied`);
      }
    }
  }
  return verdict(NAME, f, { failedWrites: failed.length, readsChecked: reads.length, finalsChecked });
}

/** The failed write a value or version belongs to, if any. */
function culprit(
  byValue: Map<number, WriteOp>,
  byVersion: Map<string, WriteOp>,
  value: number | null | undefined,
  version: string | undefined,
): WriteOp | undefined {
  if (typeof value === 'number' && byValue.has(value)) return byValue.get(value);
  return version === undefined ? undefined : byVersion.get(version);
}

function describe(w: WriteOp): string {
  const what = w.value === null ? 'delete' : `value ${w.value}`;
  return `${what} of failed write #${w.id} (status ${w.status ?? '-'} ${w.code ?? ''}${w.version ? `, ${w.version}` : ''})`;
}
