import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeToken, encodeToken, mergeTokens } from '../../../src/client/session.js';
import { decodeSession, encodeSession, mergeSession, topicTag } from '../../../src/core/session.js';

/**
 * The client's token codec (atob/btoa, for browsers) against the server's (Buffer, node:crypto): the same
 * tokens, and a client-side merge the server reads as the server's own merge.
 */

const tag = topicTag('lagoon.kv');
const expected = { tag, partitions: 64 };
const offsetsArb = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), {
    maxLength: 20,
  })
  .map((entries) => new Map(entries));

describe('client session tokens', () => {
  it('decode and encode exactly as the server does', () => {
    fc.assert(
      fc.property(offsetsArb, (offsets) => {
        const server = encodeSession(tag, offsets);
        const mine = decodeToken(server);
        expect(mine).toEqual({ tag, offsets: new Map([...offsets].sort((a, b) => a[0] - b[0])) });
        expect(encodeToken(mine!)).toBe(server);
      }),
    );
  });

  it('merge as the server merges: the larger offset per partition', () => {
    fc.assert(
      fc.property(offsetsArb, offsetsArb, (a, b) => {
        const merged = mergeTokens(encodeSession(tag, a), encodeSession(tag, b));
        const back = decodeSession(merged, expected);
        expect(back.ok).toBe(true);
        expect(back.ok && back.offsets).toEqual(mergeSession(a, b));
        expect(merged).toBe(encodeSession(tag, mergeSession(a, b)));
      }),
    );
  });

  it('take a token of another topic or format as it is', () => {
    const mine = encodeSession(tag, new Map([[0, 5]]));
    const other = encodeSession(topicTag('other'), new Map([[1, 1]]));
    expect(mergeTokens(mine, other)).toBe(other);
    expect(mergeTokens(mine, 's2.future')).toBe('s2.future');
    expect(mergeTokens(undefined, mine)).toBe(mine);
    for (const bad of ['s1.%%%', 's1.a', `s1.${btoa('zz|0:1')}`, 's1.' + btoa(`${tag}|0:01`)]) {
      expect(decodeToken(bad)).toBeUndefined();
    }
  });
});
