import { createHash } from 'node:crypto';

/**
 * Session tokens (`Lagoon-Session`): partition → required next offset. A replica may serve a session read on
 * a partition once its applied offset (the next offset it will apply) is at least the token's value; after a
 * write at offset o the requirement is o + 1. Format: `"s1." + base64url("<topicTag>|0:12,3:44")`.
 */

const PREFIX = 's1.';
/** Longest token accepted, in characters. */
export const MAX_SESSION_TOKEN_LENGTH = 4096;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const TAG_RE = /^[0-9a-f]{8}$/;
const ENTRY_RE = /^(0|[1-9][0-9]{0,15}):(0|[1-9][0-9]{0,15})$/;

/** First 8 hex characters of sha256(topic): binds a token to its topic. */
export function topicTag(topic: string): string {
  return createHash('sha256').update(topic, 'utf8').digest('hex').slice(0, 8);
}

/** Encodes a session token. Partitions are written in ascending order, so equal maps give equal tokens. */
export function encodeSession(tag: string, offsets: ReadonlyMap<number, number>): string {
  if (!TAG_RE.test(tag)) throw new RangeError(`invalid topic tag ${JSON.stringify(tag)}`);
  const parts: string[] = [];
  for (const [p, o] of [...offsets].sort((a, b) => a[0] - b[0])) {
    if (!Number.isSafeInteger(p) || p < 0) throw new RangeError(`invalid partition ${p}`);
    if (!Number.isSafeInteger(o) || o < 0) throw new RangeError(`invalid offset ${o}`);
    parts.push(`${p}:${o}`);
  }
  return PREFIX + Buffer.from(`${tag}|${parts.join(',')}`, 'utf8').toString('base64url');
}

/** Result of decoding a session token. */
export type SessionDecode = { ok: true; offsets: Map<number, number> } | { ok: false; reason: string };

/** Decodes and validates a session token against the expected topic tag and partition count. Never throws. */
export function decodeSession(token: string, expected: { tag: string; partitions: number }): SessionDecode {
  const fail = (reason: string): SessionDecode => ({ ok: false, reason });
  if (typeof token !== 'string') return fail('session token must be a string');
  if (token.length > MAX_SESSION_TOKEN_LENGTH) return fail('session token is too long');
  if (!token.startsWith(PREFIX)) return fail('session token has an unknown format');
  const b64 = token.slice(PREFIX.length);
  if (!B64URL_RE.test(b64)) return fail('session token is not base64url');
  const bytes = Buffer.from(b64, 'base64url');
  // Node ignores trailing garbage bits; a token that does not re-encode to itself was altered.
  if (bytes.toString('base64url') !== b64) return fail('session token is not canonical base64url');
  const payload = bytes.toString('latin1');
  const bar = payload.indexOf('|');
  if (bar < 0) return fail('session token payload is malformed');
  const tag = payload.slice(0, bar);
  if (!TAG_RE.test(tag)) return fail('session token payload is malformed');
  if (tag !== expected.tag) return fail('session token belongs to another topic');
  const body = payload.slice(bar + 1);
  const offsets = new Map<number, number>();
  if (body === '') return { ok: true, offsets };
  for (const item of body.split(',')) {
    const m = ENTRY_RE.exec(item);
    if (!m) return fail(`session token entry ${JSON.stringify(item)} is malformed`);
    const p = Number(m[1]);
    const o = Number(m[2]);
    if (p >= expected.partitions)
      return fail(`session token names partition ${p}, the topic has ${expected.partitions}`);
    if (!Number.isSafeInteger(o)) return fail('session token offset is out of range');
    if (offsets.has(p)) return fail(`session token names partition ${p} twice`);
    offsets.set(p, o);
  }
  return { ok: true, offsets };
}

/** Merges two sessions: the larger requirement per partition (both tokens' guarantees hold after). */
export function mergeSession(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
): Map<number, number> {
  const out = new Map(a);
  for (const [p, o] of b) out.set(p, Math.max(o, out.get(p) ?? 0));
  return out;
}
