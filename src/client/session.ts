/**
 * Client-side session tokens. The server's codec (src/core/session.ts) hashes topic names with node:crypto and
 * decodes with Buffer, so it cannot run in a browser; the client needs only the part that merges tokens, which
 * is reimplemented here on atob/btoa. A token is `"s1." + base64url("<topicTag>|<partition>:<offset>,...")`:
 * partition → the next offset a replica must have applied before it may serve a session read.
 *
 * Why merge on the client at all: one client talks to several nodes, and each node only merges the token it was
 * sent with what it did itself. Two answers from two nodes (say two concurrent writes) each carry one part of
 * the session; keeping only the latest would drop the other, and a later read could miss that write.
 */

const PREFIX = 's1.';
const TAG_RE = /^[0-9a-f]{8}$/;
const ENTRY_RE = /^(0|[1-9][0-9]{0,15}):(0|[1-9][0-9]{0,15})$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** A decoded token: the topic tag it is bound to and its offset per partition. */
export interface SessionState {
  tag: string;
  offsets: Map<number, number>;
}

function fromBase64url(s: string): string | undefined {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) return undefined;
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  try {
    return atob(b64);
  } catch {
    return undefined;
  }
}

function toBase64url(latin1: string): string {
  return btoa(latin1).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes a token; undefined for anything this client does not understand (it then keeps tokens as they are). */
export function decodeToken(token: string): SessionState | undefined {
  if (typeof token !== 'string' || !token.startsWith(PREFIX)) return undefined;
  const b64 = token.slice(PREFIX.length);
  const payload = fromBase64url(b64);
  // Must re-encode to itself, as the server requires: otherwise the re-encoded merge could differ from it.
  if (payload === undefined || toBase64url(payload) !== b64) return undefined;
  const bar = payload.indexOf('|');
  if (bar < 0) return undefined;
  const tag = payload.slice(0, bar);
  if (!TAG_RE.test(tag)) return undefined;
  const body = payload.slice(bar + 1);
  const offsets = new Map<number, number>();
  if (body === '') return { tag, offsets };
  for (const item of body.split(',')) {
    const m = ENTRY_RE.exec(item);
    if (!m) return undefined;
    const p = Number(m[1]);
    const o = Number(m[2]);
    if (!Number.isSafeInteger(p) || !Number.isSafeInteger(o) || offsets.has(p)) return undefined;
    offsets.set(p, o);
  }
  return { tag, offsets };
}

/** Encodes a token the way the server does: partitions ascending, so equal sessions give equal tokens. */
export function encodeToken(state: SessionState): string {
  const parts = [...state.offsets].sort((a, b) => a[0] - b[0]).map(([p, o]) => `${p}:${o}`);
  return PREFIX + toBase64url(`${state.tag}|${parts.join(',')}`);
}

/**
 * Merges a token just received into the one held: the larger offset per partition, so both tokens' guarantees
 * hold after. A token for another topic, or in a format this client does not know, replaces the held one: the
 * server that issued it is the authority, and a client talks to one store.
 */
export function mergeTokens(held: string | undefined, received: string): string {
  if (held === undefined || held === received) return received;
  const a = decodeToken(held);
  const b = decodeToken(received);
  if (a === undefined || b === undefined || a.tag !== b.tag) return received;
  const offsets = new Map(a.offsets);
  let grew = false;
  for (const [p, o] of b.offsets) {
    if (o > (offsets.get(p) ?? -1)) {
      offsets.set(p, o);
      grew = true;
    }
  }
  return grew ? encodeToken({ tag: a.tag, offsets }) : held;
}
