import { describe, expect, it } from 'vitest';
import { figures, run } from './support.js';

// A Lagoon node SIGKILLed while its replica applies under load, then restarted: it resumes from SQLite,
// loses nothing, applies nothing twice, and converges with the others.
describe('node-kill-mid-batch', () => {
  it('loses no acknowledged write and the replicas converge', async () => {
    const r = await run('node-kill-mid-batch');
    console.log(figures(r));
    for (const c of r.report.checkers) expect(c.valid, `${c.name}: ${c.errors.join('\n')}`).toBe(true);
    expect(r.report.valid).toBe(true);
  });
});
