/** Checker `eventual-availability`: eventual reads keep being served while every broker is down. */
import type { CheckResult, History, ReadOp } from '../history.js';
import { type CheckOptions, Findings, rel, verdict } from './common.js';

const NAME = 'eventual-availability';
/** FaultWindow.kind of a total broker outage (scenario name). */
export const ALL_BROKERS_DOWN = 'all-brokers-down';

/** Every eventual read invoked inside an all-brokers outage window has outcome ok. */
export function eventualAvailability(h: History, opts: CheckOptions = {}): CheckResult {
  const windows = opts.outageWindows ?? h.faults.filter((w) => w.kind === ALL_BROKERS_DOWN);
  const inside = (r: ReadOp) => windows.some((w) => r.invokeAt >= w.startAt && r.invokeAt <= w.endAt);
  const attempted = h.ops.filter(
    (op): op is ReadOp => op.kind === 'read' && op.consistency === 'eventual' && inside(op),
  );
  const f = new Findings();
  for (const r of attempted) {
    if (r.outcome !== 'ok') {
      f.add(
        `eventual read #${r.id} (node ${r.node}, key ${r.key}) at ${rel(h, r.invokeAt)} during the outage ended ${r.outcome} (${r.status ?? '-'} ${r.code ?? ''})`,
      );
    }
  }
  const served = attempted.length - f.count;
  const stats = { windows: windows.length, attempted: attempted.length, served, notServed: f.count };
  return verdict(NAME, f, stats, attempted.length > 0 ? true : 'unknown');
}
