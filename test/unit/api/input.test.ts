import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { headerValue } from '../../../src/api/buffered.js';
import { idleTimeoutMs } from '../../../src/api/limits.js';
import { parseWith } from '../../../src/api/parse.js';
import { strictQuerystring, UNDECODABLE } from '../../../src/api/query.js';
import { ReadQuery, ScanQuery, WriteQuery } from '../../../src/api/schemas.js';
import { parseIfMatch } from '../../../src/core/version.js';
import { isLagoonError } from '../../../src/errors.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return isLagoonError(e) ? e.code : `not a LagoonError: ${String(e)}`;
  }
}

describe('strict query strings', () => {
  it('decodes like a form, repeats become arrays', () => {
    const q = strictQuerystring('prefix=a+b%2Fc&limit=5&x&x=2&=v');
    expect({ ...q }).toEqual({ prefix: 'a b/c', limit: '5', x: ['', '2'], '': 'v' });
    expect(q[UNDECODABLE]).toBeUndefined();
  });

  it('marks names and values that are not percent-encoded UTF-8, and parseWith refuses them', () => {
    for (const qs of ['prefix=%FF', 'prefix=%ED%A0%80', 'prefix=%', 'prefix=%ZZ', '%C0%AF=1', 'a=%E2%82']) {
      const q = strictQuerystring(qs);
      expect(q[UNDECODABLE], qs).toHaveLength(1);
      expect(
        code(() => parseWith(ScanQuery, q)),
        qs,
      ).toBe('invalid_query');
    }
  });

  it('keeps __proto__ as a plain (refused) name, touching no prototype', () => {
    const q = strictQuerystring('__proto__=1&constructor=2');
    expect(Object.getPrototypeOf(q)).toBeNull();
    expect(Object.keys(q)).toEqual(['__proto__', 'constructor']);
    expect(code(() => parseWith(ReadQuery, q))).toBe('invalid_query');
  });

  it('never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (s) => {
        strictQuerystring(s);
      }),
    );
  });
});

describe('parseWith on an empty query', () => {
  it("gives the schema's defaults, a fresh object each time; a schema that needs a parameter still refuses", () => {
    const a = parseWith(ReadQuery, strictQuerystring(''));
    expect(a).toEqual({ consistency: 'eventual' });
    (a as { consistency: string }).consistency = 'strong';
    expect(parseWith(ReadQuery, {})).toEqual({ consistency: 'eventual' });
    expect(parseWith(ReadQuery, undefined)).toEqual({ consistency: 'eventual' });
    expect(parseWith(ScanQuery, {})).toEqual({ consistency: 'eventual', prefix: '', limit: 100 });
    const needs = z.object({ at: z.string() }).strict();
    expect(code(() => parseWith(needs, {}))).toBe('invalid_query');
    expect(code(() => parseWith(needs, {}))).toBe('invalid_query');
  });
});

describe('integer query parameters are plain decimal', () => {
  it('refuses hex, exponents, signs, spaces and fractions rather than coercing them', () => {
    for (const ttl of ['0x10', '1e3', '+5', ' 5', '5 ', '5.0', '1.5', '', '-1', '0', '05', 'Infinity']) {
      expect(
        code(() => parseWith(WriteQuery, { ttl })),
        ttl,
      ).toBe('invalid_query');
    }
    expect(parseWith(WriteQuery, { ttl: '5', timeoutMs: '100' })).toEqual({ ttl: 5, timeoutMs: 100 });
    expect(code(() => parseWith(WriteQuery, { timeoutMs: '99' }))).toBe('invalid_query');
    expect(parseWith(ScanQuery, {})).toMatchObject({ prefix: '', limit: 100, consistency: 'eventual' });
  });
});

describe('header values', () => {
  it('lose only the spaces and tabs HTTP allows around them', () => {
    expect(headerValue(' \tstrict\t ')).toBe('strict');
    expect(headerValue('strict\u00a0')).toBe('strict\u00a0');
    expect(parseIfMatch(' "0-1" ')).toBe('0-1');
    expect(parseIfMatch('*\u00a0')).toBeUndefined();
    expect(parseIfMatch('\u2003"0-1"')).toBeUndefined();
  });
});

describe('the socket idle timeout', () => {
  it('outlasts the longest wait a request may ask for', () => {
    expect(idleTimeoutMs({ writeTimeoutMs: 10_000, readTimeoutMs: 10_000 })).toBe(150_000);
    expect(idleTimeoutMs({ writeTimeoutMs: 120_000, readTimeoutMs: 120_000 })).toBe(270_000);
  });
});
