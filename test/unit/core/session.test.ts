import { describe, expect, it } from 'vitest';
import {
  decodeSession,
  encodeSession,
  MAX_SESSION_TOKEN_LENGTH,
  mergeSession,
  topicTag,
} from '../../../src/core/session.js';

const tag = topicTag('lagoon.kv');
const exp = { tag, partitions: 6 };
const raw = (payload: string) => `s1.${Buffer.from(payload, 'utf8').toString('base64url')}`;

describe('topicTag', () => {
  it('is 8 hex chars and differs per topic', () => {
    expect(tag).toMatch(/^[0-9a-f]{8}$/);
    expect(topicTag('other')).not.toBe(tag);
    expect(topicTag('lagoon.kv')).toBe(tag);
  });
});

describe('encodeSession / decodeSession', () => {
  it('round-trips, including the empty session', () => {
    const m = new Map([
      [3, 44],
      [0, 12],
    ]);
    const t = encodeSession(tag, m);
    expect(t.startsWith('s1.')).toBe(true);
    expect(Buffer.from(t.slice(3), 'base64url').toString()).toBe(`${tag}|0:12,3:44`);
    expect(decodeSession(t, exp)).toEqual({ ok: true, offsets: m });
    const empty = encodeSession(tag, new Map());
    expect(decodeSession(empty, exp)).toEqual({ ok: true, offsets: new Map() });
  });

  it('is canonical: equal maps give equal tokens', () => {
    const a = encodeSession(
      tag,
      new Map([
        [1, 1],
        [0, 0],
      ]),
    );
    const b = encodeSession(
      tag,
      new Map([
        [0, 0],
        [1, 1],
      ]),
    );
    expect(a).toBe(b);
  });

  it('refuses to encode nonsense', () => {
    expect(() => encodeSession('xyz', new Map())).toThrow(RangeError);
    expect(() => encodeSession(tag, new Map([[-1, 0]]))).toThrow(RangeError);
    expect(() => encodeSession(tag, new Map([[0, 1.5]]))).toThrow(RangeError);
    expect(() => encodeSession(tag, new Map([[0, -1]]))).toThrow(RangeError);
  });

  it('rejects tokens from another topic', () => {
    const t = encodeSession(topicTag('other'), new Map([[0, 1]]));
    expect(decodeSession(t, exp)).toMatchObject({ ok: false, reason: expect.stringMatching(/topic/) });
  });

  it('rejects tampered and malformed tokens', () => {
    const good = encodeSession(tag, new Map([[1, 5]]));
    const cases = [
      '',
      's1.',
      's2.' + good.slice(3),
      good.slice(3),
      `${good}=`,
      `${good}+`,
      `${good} `,
      good.replace('s1.', 's1.!'),
      raw('nobar'),
      raw(`${tag}`),
      raw(`${tag.toUpperCase()}|0:1`),
      raw(`abc|0:1`),
      raw(`${tag}|0:1,`),
      raw(`${tag}|,0:1`),
      raw(`${tag}|0:1,0:2`),
      raw(`${tag}|6:1`),
      raw(`${tag}|-1:1`),
      raw(`${tag}|0:-1`),
      raw(`${tag}|0:01`),
      raw(`${tag}|00:1`),
      raw(`${tag}|0:1.5`),
      raw(`${tag}|0:1e3`),
      raw(`${tag}|0: 1`),
      raw(`${tag}|0:9007199254740992`),
      raw(`${tag}|0:99999999999999999999`),
      raw(`${tag}|0:1|1:2`),
      raw(`${tag}|0:1;1:2`),
      raw(`${tag}|٠:1`),
      `s1.${'A'.repeat(MAX_SESSION_TOKEN_LENGTH)}`,
    ];
    for (const t of cases) expect(decodeSession(t, exp).ok, t).toBe(false);
    expect(decodeSession(42 as unknown as string, exp).ok).toBe(false);
    expect(decodeSession(raw(`${tag}|0:9007199254740991`), exp)).toEqual({
      ok: true,
      offsets: new Map([[0, 9007199254740991]]),
    });
  });

  it('rejects non-canonical base64 (altered trailing bits)', () => {
    const good = encodeSession(tag, new Map([[0, 1]]));
    const b64 = good.slice(3);
    // Payload length makes the last char carry unused bits; flipping them keeps the bytes but not the text.
    if (Buffer.from(b64, 'base64url').length % 3 !== 0) {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = b64.at(-1)!;
      const altered = b64.slice(0, -1) + alphabet[(alphabet.indexOf(last) + 1) % 64];
      expect(Buffer.from(altered, 'base64url').equals(Buffer.from(b64, 'base64url'))).toBe(true);
      expect(decodeSession(`s1.${altered}`, exp).ok).toBe(false);
    }
  });

  it('accepts a token whose partitions are within range only', () => {
    const t = encodeSession(tag, new Map([[5, 1]]));
    expect(decodeSession(t, exp).ok).toBe(true);
    expect(decodeSession(t, { tag, partitions: 5 }).ok).toBe(false);
  });
});

describe('mergeSession', () => {
  it('keeps the maximum per partition and the union of partitions', () => {
    const a = new Map([
      [0, 5],
      [1, 9],
    ]);
    const b = new Map([
      [1, 3],
      [2, 7],
    ]);
    const m = mergeSession(a, b);
    expect(m).toEqual(
      new Map([
        [0, 5],
        [1, 9],
        [2, 7],
      ]),
    );
    expect(mergeSession(b, a)).toEqual(m);
    expect(mergeSession(m, m)).toEqual(m);
    expect(mergeSession(new Map(), new Map())).toEqual(new Map());
    // Inputs are not mutated.
    expect(a.get(2)).toBeUndefined();
  });
});
