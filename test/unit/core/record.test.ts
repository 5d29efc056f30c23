import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  type DecodedRecord,
  decodeRecord,
  encodeKey,
  encodeRecord,
  MAX_IDEM_LENGTH,
  MAX_JSON_DEPTH,
  MAX_TTL_MS,
  parseJsonValue,
  requestFingerprint,
  type WriteOp,
} from '../../../src/core/record.js';

const k = (s: string) => Buffer.from(s, 'utf8');
const j = (x: unknown) => Buffer.from(JSON.stringify(x), 'utf8');

function expectInvalid(r: DecodedRecord, pattern?: RegExp): void {
  expect(r.op).toBe('invalid');
  if (r.op === 'invalid' && pattern) expect(r.reason).toMatch(pattern);
}

describe('encodeRecord / decodeRecord', () => {
  it('round-trips every op with every option', () => {
    const ops: WriteOp[] = [
      { v: 1, op: 'put', value: { a: [1, 'x', null, true] }, wid: 'n1' },
      { v: 1, op: 'put', value: null, wid: 'n1' },
      { v: 1, op: 'put', value: 'str', ifMatch: '2-5', ttlMs: 1000, idem: 'abc', wid: 'n1' },
      { v: 1, op: 'put', value: 0, ifNoneMatch: true, wid: 'n2' },
      { v: 1, op: 'put', value: [], ifMatch: '*', wid: 'n2' },
      { v: 1, op: 'del', wid: 'n1' },
      { v: 1, op: 'del', ifMatch: '0-0', idem: 'i', wid: 'n1' },
      { v: 1, op: 'del', ifNoneMatch: true, wid: 'n1' },
      { v: 1, op: 'put', value: 1, idem: 'i', wid: 'n3', dl: 1_790_000_000_000 },
      { v: 1, op: 'del', wid: 'n3', dl: 1 },
    ];
    for (const op of ops) {
      expect(decodeRecord(encodeKey('key'), encodeRecord(op))).toEqual({ ...op, key: 'key' });
    }
    const hb: WriteOp = { v: 1, op: 'hb', node: 'node-1' };
    expect(decodeRecord(null, encodeRecord(hb))).toEqual(hb);
  });

  it('encodes fields in a fixed order and drops unknown ones', () => {
    const op = { wid: 'w', value: 1, op: 'put', v: 1, extra: 'x' } as unknown as WriteOp;
    expect(encodeRecord(op).toString()).toBe('{"v":1,"op":"put","value":1,"wid":"w"}');
    const full = { idem: 'i', wid: 'w', ttlMs: 5, ifMatch: '0-1', value: 1, op: 'put', v: 1 } as WriteOp;
    expect(encodeRecord(full).toString()).toBe(
      '{"v":1,"op":"put","value":1,"ttlMs":5,"ifMatch":"0-1","idem":"i","wid":"w"}',
    );
  });

  it('refuses to encode what would not decode', () => {
    const bad: unknown[] = [
      { v: 1, op: 'put', wid: 'w' },
      { v: 1, op: 'put', value: undefined, wid: 'w' },
      { v: 1, op: 'put', value: () => 1, wid: 'w' },
      { v: 1, op: 'put', value: Number.NaN, wid: 'w' },
      { v: 1, op: 'put', value: new Date(0), wid: 'w' },
      { v: 1, op: 'put', value: 1n, wid: 'w' },
      { v: 1, op: 'put', value: 1, wid: '' },
      { v: 1, op: 'put', value: 1, wid: 'w', ttlMs: 0 },
      { v: 1, op: 'hb', node: '' },
      { v: 2, op: 'del', wid: 'w' },
    ];
    for (const b of bad) expect(() => encodeRecord(b as WriteOp)).toThrow(TypeError);
  });

  it('decodes unknown fields away (forward compatible)', () => {
    expect(decodeRecord(k('a'), j({ v: 1, op: 'del', wid: 'w', future: 1 }))).toEqual({
      v: 1,
      op: 'del',
      wid: 'w',
      key: 'a',
    });
  });

  it('never throws on malformed input and says why', () => {
    const cases: Array<[Buffer | null, Buffer | null, RegExp]> = [
      [k('a'), null, /null/],
      [k('a'), Buffer.alloc(0), /JSON/],
      [k('a'), k('{'), /JSON/],
      [k('a'), Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), /UTF-8 JSON/],
      [k('a'), k('[]'), /object/],
      [k('a'), k('null'), /object/],
      [k('a'), k('"put"'), /object/],
      [k('a'), j({ op: 'put', value: 1, wid: 'w' }), /version/],
      [k('a'), j({ v: '1', op: 'put', value: 1, wid: 'w' }), /version/],
      [k('a'), j({ v: 2, op: 'put', value: 1, wid: 'w' }), /version/],
      [k('a'), j({ v: 1, op: 'upsert', value: 1, wid: 'w' }), /unknown op/],
      [k('a'), j({ v: 1, value: 1, wid: 'w' }), /unknown op/],
      [k('a'), j({ v: 1, op: 'put', wid: 'w' }), /value/],
      [k('a'), j({ v: 1, op: 'put', value: 1 }), /wid/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 7 }), /wid/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'x'.repeat(257) }), /wid/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ifMatch: 'nope' }), /ifMatch/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ifMatch: 3 }), /ifMatch/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ifNoneMatch: '*' }), /ifNoneMatch/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ifNoneMatch: false }), /ifNoneMatch/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ifNoneMatch: true, ifMatch: '0-1' }), /exclusive/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', idem: '' }), /idem/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', idem: 'x'.repeat(MAX_IDEM_LENGTH + 1) }), /idem/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', idem: 5 }), /idem/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', dl: 0 }), /dl/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', dl: 1.5 }), /dl/],
      [k('a'), j({ v: 1, op: 'del', wid: 'w', dl: '5' }), /dl/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ttlMs: 0 }), /ttlMs/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ttlMs: -5 }), /ttlMs/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ttlMs: 1.5 }), /ttlMs/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ttlMs: '100' }), /ttlMs/],
      [k('a'), j({ v: 1, op: 'put', value: 1, wid: 'w', ttlMs: MAX_TTL_MS + 1 }), /ttlMs/],
      [k('a'), j({ v: 1, op: 'del', value: 1, wid: 'w' }), /del/],
      [k('a'), j({ v: 1, op: 'del', ttlMs: 5, wid: 'w' }), /del/],
      [k('a'), j({ v: 1, op: 'hb' }), /node/],
      [k('a'), j({ v: 1, op: 'hb', node: 'n' }), /null key/],
      [null, j({ v: 1, op: 'put', value: 1, wid: 'w' }), /null key/],
      [null, j({ v: 1, op: 'del', wid: 'w' }), /null key/],
      [Buffer.alloc(0), j({ v: 1, op: 'put', value: 1, wid: 'w' }), /empty/],
      [k('a\nb'), j({ v: 1, op: 'put', value: 1, wid: 'w' }), /control/],
      [k('x'.repeat(1025)), j({ v: 1, op: 'put', value: 1, wid: 'w' }), /1024/],
      [Buffer.from([0x61, 0xc3]), j({ v: 1, op: 'put', value: 1, wid: 'w' }), /UTF-8/],
      [Buffer.from([0xed, 0xa0, 0x80]), j({ v: 1, op: 'del', wid: 'w' }), /UTF-8/],
    ];
    for (const [key, value, re] of cases) expectInvalid(decodeRecord(key, value), re);
  });

  it('keeps the (lossy) key of an invalid record for the writes table', () => {
    expect(decodeRecord(k('a'), k('{'))).toEqual({ op: 'invalid', reason: expect.any(String), key: 'a' });
    const bad = decodeRecord(Buffer.from([0x61, 0xff]), j({ v: 1, op: 'del', wid: 'w' }));
    expect(bad).toEqual({ op: 'invalid', reason: expect.any(String), key: 'a\ufffd' });
    expect(decodeRecord(null, null)).toEqual({ op: 'invalid', reason: expect.any(String), key: null });
  });

  it('rejects absurdly deep values instead of overflowing the stack later', () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expectInvalid(decodeRecord(k('a'), k(`{"v":1,"op":"put","wid":"w","value":${deep}}`)), /JSON/);
  });

  it('accepts a __proto__ member as plain data', () => {
    const r = decodeRecord(k('a'), k('{"v":1,"op":"put","wid":"w","value":{"__proto__":{"x":1}}}'));
    expect(r.op).toBe('put');
    if (r.op === 'put') expect(JSON.stringify(r.value)).toBe('{"__proto__":{"x":1}}');
  });

  it('takes the last of duplicate JSON members, deterministically', () => {
    const r = decodeRecord(k('a'), k('{"v":1,"op":"put","wid":"w","value":1,"value":2}'));
    expect(r).toMatchObject({ op: 'put', value: 2 });
  });
});

describe('parseJsonValue (request bodies)', () => {
  const code = (text: string) => {
    const r = parseJsonValue(text);
    return r.ok ? 'ok' : r.error.code;
  };
  it('refuses numbers JSON cannot carry, with a stable code', () => {
    expect(code('1e400')).toBe('invalid_value');
    expect(code('{"x":1e999}')).toBe('invalid_value');
    expect(code('[-1e309]')).toBe('invalid_value');
    expect(code('1.7e308')).toBe('ok');
    expect(code('1e-400')).toBe('ok'); // underflows to 0, which is a number JSON carries
  });
  it('refuses integer literals beyond ±(2^53−1), keeps doubles by their spelling', () => {
    expect(code('9007199254740991')).toBe('ok');
    expect(code('-9007199254740991')).toBe('ok');
    expect(code('9007199254740992')).toBe('unsafe_integer');
    expect(code('{"id":-12345678901234567890}')).toBe('unsafe_integer');
    expect(code('[1, 2, 99999999999999999999999]')).toBe('unsafe_integer');
    expect(code('9007199254740993.0')).toBe('ok');
    expect(code('1e20')).toBe('ok');
    // Digits inside strings are not numbers.
    expect(code('"99999999999999999999999"')).toBe('ok');
    expect(code(String.raw`{"99999999999999999999":"a\\"}`)).toBe('ok'); // an escaped backslash ends no string early
  });
  it('bounds nesting at MAX_JSON_DEPTH, and the encoder accepts exactly that', () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const deepest = parseJsonValue(nested(MAX_JSON_DEPTH));
    expect(deepest.ok).toBe(true);
    if (deepest.ok)
      expect(() => encodeRecord({ v: 1, op: 'put', value: deepest.value, wid: 'w' })).not.toThrow();
    expect(code(nested(MAX_JSON_DEPTH + 1))).toBe('invalid_value');
    expect(code(`${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${'}'.repeat(MAX_JSON_DEPTH + 1)}`)).toBe(
      'invalid_value',
    );
    expect(code(`"${'['.repeat(5000)}"`)).toBe('ok'); // brackets in a string are text
    expect(code(nested(100_000))).toBe('invalid_value'); // no stack overflow either
  });
  it('answers invalid_json for text that is not JSON', () => {
    for (const t of ['{', '{"a":}', 'undefined', "'x'", '01', 'NaN', '-'])
      expect(code(t), t).toBe('invalid_json');
  });
  it('keeps __proto__ and constructor as data, touching no prototype', () => {
    const r = parseJsonValue('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"a":1}');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = r.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // Survives the record round trip as data.
    const d = decodeRecord(k('key'), encodeRecord({ v: 1, op: 'put', value: v, wid: 'w' }));
    expect(d.op).toBe('put');
    if (d.op === 'put') {
      expect(JSON.stringify(d.value)).toBe(JSON.stringify(v));
      expect(Object.keys(d.value as object)).toEqual(['__proto__', 'constructor', 'a']);
    }
    expect(canonicalJson(v)).toBe(
      '{"__proto__":{"polluted":true},"a":1,"constructor":{"prototype":{"x":1}}}',
    );
  });
});

describe('requestFingerprint', () => {
  const fp = requestFingerprint;
  it('is equal for the same request, whatever the member order of the value', () => {
    expect(fp({ op: 'put', key: 'k', value: { a: 1, b: 2 } })).toBe(
      fp({ op: 'put', key: 'k', value: { b: 2, a: 1 } }),
    );
    expect(fp({ op: 'put', key: 'k', value: 1 })).toMatch(/^[0-9a-f]{64}$/);
  });
  it('differs when method, key, value, conditions or ttl differ', () => {
    const base = { op: 'put' as const, key: 'k', value: 1 };
    const all = [
      fp(base),
      fp({ ...base, op: 'del' }),
      fp({ ...base, key: 'k2' }),
      fp({ ...base, value: 2 }),
      fp({ ...base, value: '1' }),
      fp({ ...base, value: [1] }),
      fp({ ...base, ifMatch: '0-1' }),
      fp({ ...base, ifMatch: '*' }),
      fp({ ...base, ifNoneMatch: true }),
      fp({ ...base, ttlMs: 1000 }),
    ];
    expect(new Set(all).size).toBe(all.length);
  });
});
