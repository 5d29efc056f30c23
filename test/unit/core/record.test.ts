import { describe, expect, it } from 'vitest';
import {
  type DecodedRecord,
  decodeRecord,
  encodeKey,
  encodeRecord,
  MAX_IDEM_LENGTH,
  MAX_TTL_MS,
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
