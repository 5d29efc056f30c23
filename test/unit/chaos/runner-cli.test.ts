import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

describe('lagoon chaos (arguments)', () => {
  it('lists the scenarios on --help', async () => {
    const c = capture();
    expect(await main(['chaos', '--help'], c.io)).toBe(0);
    expect(c.out.join('\n')).toContain('broker-pause-short');
    expect(c.out.join('\n')).toContain('node-kill-mid-batch');
  });

  it('refuses an unknown scenario or a bad flag before starting anything', async () => {
    let c = capture();
    expect(await main(['chaos', 'meteor-strike'], c.io)).toBe(2);
    expect(c.err.join('\n')).toContain("Unknown scenario 'meteor-strike'");
    c = capture();
    expect(await main(['chaos'], c.io)).toBe(2);
    expect(c.err.join('\n')).toContain('Name a scenario');
    c = capture();
    expect(await main(['chaos', 'broker-kill', '--rate', 'fast'], c.io)).toBe(2);
    expect(c.err.join('\n')).toContain('--rate must be a whole number');
    c = capture();
    expect(await main(['chaos', 'broker-kill', '--duration', '2'], c.io)).toBe(2);
  });

  it('refuses node and proxy faults on an attached cluster', async () => {
    const c = capture();
    expect(await main(['chaos', 'node-kill-mid-batch', '--attach', '--data-dir', '/nonexistent'], c.io)).toBe(
      2,
    );
    expect(c.err.join('\n')).toContain('without --attach');
  });
});
