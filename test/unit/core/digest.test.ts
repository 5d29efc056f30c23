import { describe, expect, it } from 'vitest';
import {
  addHash,
  bigIntToDigest,
  digestOf,
  digestToBigInt,
  EMPTY_DIGEST,
  entryHash,
  subHash,
} from '../../../src/core/digest.js';

const e = (key: string, version = '0-1', value = '1', expiresAt: number | null = null) => ({
  key,
  version,
  value,
  expiresAt,
});

describe('digest', () => {
  it('EMPTY_DIGEST is 32 zeros', () => {
    expect(EMPTY_DIGEST).toBe('00000000000000000000000000000000');
    expect(digestOf([])).toBe(EMPTY_DIGEST);
  });

  it('entryHash is the first 16 bytes of sha256 over the NUL-joined fields', () => {
    // First 32 hex chars of sha256("a\u00000-1\u00001\u0000"), pinned so the format cannot drift silently.
    const h = entryHash(e('a'));
    expect(bigIntToDigest(h)).toBe('855a9e486ab3269030974f47aa477cc2');
    expect(h).toBeGreaterThanOrEqual(0n);
    expect(h < 1n << 128n).toBe(true);
    expect(bigIntToDigest(h)).toMatch(/^[0-9a-f]{32}$/);
    // Every field matters, and null vs a number for expiresAt differ.
    const variants = [
      e('b'),
      e('a', '0-2'),
      e('a', '0-1', '2'),
      e('a', '0-1', '1', 5),
      e('a', '0-1', '1', 0),
    ];
    for (const v of variants) expect(entryHash(v)).not.toBe(h);
  });

  it('is independent of order and supports removal', () => {
    const xs = [e('a'), e('b', '1-3'), e('c', '1-4', '{"x":1}', 99)];
    const d1 = xs.reduce((d, x) => addHash(d, entryHash(x)), EMPTY_DIGEST);
    const d2 = [...xs].reverse().reduce((d, x) => addHash(d, entryHash(x)), EMPTY_DIGEST);
    expect(d1).toBe(d2);
    expect(d1).toBe(digestOf(xs));
    expect(subHash(d1, entryHash(xs[1]!))).toBe(digestOf([xs[0]!, xs[2]!]));
    expect(xs.reduce((d, x) => subHash(d, entryHash(x)), d1)).toBe(EMPTY_DIGEST);
  });

  it('wraps around mod 2^128 in both directions', () => {
    const max = (1n << 128n) - 1n;
    expect(addHash(bigIntToDigest(max), 1n)).toBe(EMPTY_DIGEST);
    expect(subHash(EMPTY_DIGEST, 1n)).toBe('f'.repeat(32));
    expect(bigIntToDigest(-1n)).toBe('f'.repeat(32));
    expect(bigIntToDigest(1n << 130n)).toBe(EMPTY_DIGEST);
  });

  it('parses only well-formed digests', () => {
    expect(digestToBigInt('0'.repeat(31) + 'a')).toBe(10n);
    for (const bad of ['', 'F'.repeat(32), '0'.repeat(31), '0'.repeat(33), `0x${'0'.repeat(30)}`]) {
      expect(() => digestToBigInt(bad)).toThrow(RangeError);
    }
  });
});
