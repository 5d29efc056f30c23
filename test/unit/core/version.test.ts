import { describe, expect, it } from 'vitest';
import { etagOf, formatVersion, parseIfMatch, parseVersion } from '../../../src/core/version.js';

describe('formatVersion / parseVersion', () => {
  it('round-trips', () => {
    expect(formatVersion(3, 1042)).toBe('3-1042');
    expect(parseVersion('3-1042')).toEqual({ partition: 3, offset: 1042 });
    expect(parseVersion('0-0')).toEqual({ partition: 0, offset: 0 });
    const big = Number.MAX_SAFE_INTEGER;
    expect(parseVersion(formatVersion(2147483647, big))).toEqual({ partition: 2147483647, offset: big });
  });

  it('refuses to format invalid positions', () => {
    expect(() => formatVersion(-1, 0)).toThrow(RangeError);
    expect(() => formatVersion(0, -1)).toThrow(RangeError);
    expect(() => formatVersion(0.5, 1)).toThrow(RangeError);
    expect(() => formatVersion(1, 2 ** 53)).toThrow(RangeError);
    expect(() => formatVersion(2 ** 31, 0)).toThrow(RangeError);
  });

  it('parses strictly', () => {
    for (const s of [
      '',
      '3',
      '3-',
      '-3',
      '3--1',
      '3-01',
      '03-1',
      '+3-1',
      '3-+1',
      ' 3-1',
      '3-1 ',
      '3-1.0',
      '3-1e3',
      'a-1',
      '3-1-2',
      '"3-1"',
      '2147483648-0',
      '0-9007199254740992',
      '0-99999999999999999999999',
      '٣-١',
    ]) {
      expect(parseVersion(s), s).toBeUndefined();
    }
    expect(parseVersion('0-9007199254740991')).toEqual({ partition: 0, offset: 9007199254740991 });
    expect(parseVersion(3 as unknown as string)).toBeUndefined();
  });
});

describe('etagOf / parseIfMatch', () => {
  it('quotes versions', () => {
    expect(etagOf('3-1042')).toBe('"3-1042"');
    expect(parseIfMatch(etagOf('3-1042'))).toBe('3-1042');
  });

  it('handles *, whitespace and bare versions', () => {
    expect(parseIfMatch('*')).toBe('*');
    expect(parseIfMatch('  *  ')).toBe('*');
    expect(parseIfMatch(' "0-7" ')).toBe('0-7');
    expect(parseIfMatch('0-7')).toBe('0-7');
  });

  it('rejects weak tags, lists, garbage and broken quotes', () => {
    for (const h of [
      'W/"3-1"',
      'w/"3-1"',
      '"3-1", "3-2"',
      '"3-1',
      '3-1"',
      '"',
      '""',
      '"abc"',
      '"*"',
      '',
      '**',
      '"3-01"',
    ]) {
      expect(parseIfMatch(h), h).toBeUndefined();
    }
  });
});
