import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, validateKey } from '../../../src/core/keys.js';

describe('validateKey', () => {
  it('accepts ordinary keys, unicode and surrogate pairs', () => {
    for (const k of ['a', 'user:42', 'é', '日本語', '😀', 'a b/c?d=e', '\u00a0', '\u{10ffff}']) {
      expect(validateKey(k)).toEqual({ ok: true });
    }
  });

  it('rejects the empty key', () => {
    expect(validateKey('')).toMatchObject({ ok: false });
  });

  it('limits the UTF-8 byte length, not the string length', () => {
    expect(validateKey('a'.repeat(MAX_KEY_BYTES)).ok).toBe(true);
    expect(validateKey('a'.repeat(MAX_KEY_BYTES + 1)).ok).toBe(false);
    // 'é' is 2 bytes: 512 of them fit, 513 do not.
    expect(validateKey('é'.repeat(512)).ok).toBe(true);
    expect(validateKey('é'.repeat(513)).ok).toBe(false);
    // '😀' is 4 bytes (2 UTF-16 units).
    expect(validateKey('😀'.repeat(256)).ok).toBe(true);
    expect(validateKey('😀'.repeat(256) + 'a').ok).toBe(false);
  });

  it('rejects C0 and C1 control characters and DEL', () => {
    for (const c of [0x00, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0x9f]) {
      const r = validateKey(`a${String.fromCharCode(c)}b`);
      expect(r.ok, `U+${c.toString(16)}`).toBe(false);
    }
    for (const c of [0x20, 0x7e, 0xa0]) expect(validateKey(`a${String.fromCharCode(c)}b`).ok).toBe(true);
  });

  it('rejects lone surrogates wherever they are', () => {
    for (const k of ['\ud800', '\udc00', 'a\ud83d', '\ud83da', '\ude00\ud83d', 'x\udfffy']) {
      const r = validateKey(k);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/surrogate/);
    }
  });

  it('rejects non-strings defensively', () => {
    expect(validateKey(42 as unknown as string).ok).toBe(false);
  });
});
