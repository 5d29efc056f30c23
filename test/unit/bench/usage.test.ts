import { describe, expect, it } from 'vitest';
import { checkBenchArgs } from '../../../src/bench/usage.js';

describe('lagoon bench arguments', () => {
  it('answers --help / -h with the usage, wherever it appears', () => {
    expect(checkBenchArgs(['--help'])).toBe('help');
    expect(checkBenchArgs(['soak', '-h'])).toBe('help');
  });

  it('accepts each sub-command with its own flags', () => {
    expect(checkBenchArgs([])).toBe('run');
    expect(
      checkBenchArgs(['--quick', '--window', '6', '--profile', '--profile-dir', 'p', '--out', 'o']),
    ).toBe('run');
    expect(checkBenchArgs(['apply', '--records', '1000'])).toBe('run');
    expect(checkBenchArgs(['rebuild', '--keys', '10'])).toBe('run');
    expect(checkBenchArgs(['soak', '--minutes', '1', '--writes', '5', '--reads', '5', '--window', '5'])).toBe(
      'run',
    );
    expect(checkBenchArgs(['outage', '--render', 'f.json'])).toBe('run');
    expect(checkBenchArgs(['noop', '--port', '1234'])).toBe('run');
  });

  it('refuses what would silently run with the defaults: unknown commands and flags, missing values', () => {
    expect(() => checkBenchArgs(['--quik'])).toThrow(/takes no '--quik'/);
    expect(() => checkBenchArgs(['apply', '--keys', '5'])).toThrow(/bench apply takes no '--keys'/);
    expect(() => checkBenchArgs(['quick'])).toThrow(/Unknown bench command 'quick'/);
    expect(() => checkBenchArgs(['apply', '--records'])).toThrow(/--records needs a value/);
    expect(() => checkBenchArgs(['--window', '--quick'])).toThrow(/--window needs a value/);
    expect(() => checkBenchArgs(['--quick', 'extra'])).toThrow(/takes no 'extra'/);
  });
});
