import { describe, expect, it } from 'vitest';
import { figures, run, writesOf } from './support.js';

// Every broker down (SPEC §4): eventual reads keep answering; strict writes fail fast and definitely
// (503) and none of them is ever visible; after the brokers return, the replicas converge.
describe('all-brokers-down', () => {
  it('serves eventual reads through the outage; refused writes fail definitely and stay invisible', async () => {
    const r = await run('all-brokers-down');
    console.log(figures(r));
    const byName = Object.fromEntries(r.report.checkers.map((c) => [c.name, c]));
    const outage = r.history.faults.find((f) => f.kind === 'all-brokers-down');
    expect(outage).toBeDefined();
    // Eventual reads during the outage: at least one was made, and all were served.
    expect(byName['eventual-availability']?.valid, byName['eventual-availability']?.errors.join('\n')).toBe(
      true,
    );
    expect(byName['eventual-availability']?.stats.attempted).toBeGreaterThan(0);
    // Writes started once the brokers were gone (1 s after the kill) were refused with a definite 503.
    const refused = writesOf(r).filter(
      (w) =>
        w.invokeAt > outage!.startAt + 1000 &&
        w.invokeAt < r.report.faults[0]!.healS * 1000 + r.history.startAt,
    );
    expect(refused.length).toBeGreaterThan(0);
    const notDefinite = refused.filter((w) => !(w.outcome === 'fail' && w.status === 503));
    expect(notDefinite.map((w) => `#${w.id} ${w.outcome} ${w.status} ${w.code ?? ''}`)).toEqual([]);
    // None of the refused values is ever visible, nothing acknowledged is lost, and the replicas converge.
    for (const name of [
      'no-failed-values',
      'no-lost-writes',
      'convergence',
      'session-reads',
      'monotonic-reads',
      'linearizable',
    ]) {
      expect(byName[name]?.valid, `${name}: ${byName[name]?.errors.join('\n')}`).toBe(true);
    }
  });
});
