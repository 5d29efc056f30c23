import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/**
 * API tokens (LAGOON_API_TOKENS): comma-separated `name:token:scopes` entries, scopes joined by `+` from read,
 * write, admin. Parsed once at start (config), matched per request by src/api/auth.ts. A configured token keeps
 * only its name, scopes and sha256 digest in the open: its value is a private field, left out of JSON, inspect
 * and string conversion, and presented tokens are compared digest against digest with timingSafeEqual.
 */

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** RFC 6750 b64token: what a Bearer credential may consist of (so no `,`, `:` or whitespace). */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const digestOf = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/** One configured API token. Its value is kept out of JSON, `util.inspect` and string conversion. */
export class ApiToken {
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** sha256 of the token: what presented tokens are compared with. */
  readonly digest: Buffer;
  readonly #secret: string;

  constructor(name: string, secret: string, scopes: Iterable<Scope>) {
    this.name = name;
    this.scopes = new Set(scopes);
    this.digest = digestOf(secret);
    this.#secret = secret;
  }

  /** The token's value, for this node's own calls to its peers (Authorization: Bearer …). */
  bearer(): string {
    return this.#secret;
  }

  has(scope: Scope): boolean {
    return this.scopes.has(scope);
  }

  toJSON(): { name: string; scopes: Scope[] } {
    return { name: this.name, scopes: [...this.scopes] };
  }

  toString(): string {
    return `ApiToken(${this.name}: ${[...this.scopes].join('+')})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

export type ApiTokensResult = { ok: true; tokens: ApiToken[] } | { ok: false; error: string };

/**
 * Parses LAGOON_API_TOKENS. Empty or absent: no tokens (authentication off). Any malformed entry fails the whole
 * value, with a message that names the entry by its position only: no part of the value is echoed, since a
 * misplaced field may be a token.
 */
export function parseApiTokens(raw: string | undefined): ApiTokensResult {
  if (raw === undefined || raw.trim() === '') return { ok: true, tokens: [] };
  const entries = raw.split(',');
  const tokens: ApiToken[] = [];
  const names = new Set<string>();
  const digests: Buffer[] = [];
  const fail = (i: number, why: string): ApiTokensResult => ({
    ok: false,
    error: `LAGOON_API_TOKENS entry ${i + 1} of ${entries.length} ${why}; expected comma-separated name:token:scopes entries, scopes joined by + from ${SCOPES.join(', ')} (e.g. app:TOKEN:read+write)`,
  });
  for (const [i, entry] of entries.entries()) {
    if (entry.trim() === '') return fail(i, 'is empty');
    const parts = entry.split(':').map((p) => p.trim());
    if (parts.length !== 3) return fail(i, `has ${parts.length} :-separated fields, not 3`);
    const [name, secret, scopeList] = parts as [string, string, string];
    if (!NAME.test(name)) return fail(i, 'has a name that is not 1-64 of A-Z a-z 0-9 . _ -');
    if (!B64TOKEN.test(secret))
      return fail(i, 'has an empty token or one with characters a Bearer token cannot carry');
    const scopes = scopeList.split('+').map((s) => s.trim());
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (scopes.length === 0 || unknown.length > 0)
      return fail(i, `has ${unknown.length} unknown or empty scope(s)`);
    if (new Set(scopes).size !== scopes.length) return fail(i, 'repeats a scope');
    if (names.has(name)) return fail(i, 'repeats the name of an earlier entry');
    const token = new ApiToken(name, secret, scopes as Scope[]);
    if (digests.some((d) => timingSafeEqual(d, token.digest)))
      return fail(i, 'repeats the token of an earlier entry (one token, one set of scopes)');
    names.add(name);
    digests.push(token.digest);
    tokens.push(token);
  }
  return { ok: true, tokens };
}

/**
 * The configured token a presented one is, or undefined. Constant-time in the token: the presented token's
 * sha256 is compared (timingSafeEqual, fixed 32-byte length) with every entry's, with no early exit.
 */
export function matchToken(tokens: readonly ApiToken[], presented: string): ApiToken | undefined {
  const d = digestOf(presented);
  let found: ApiToken | undefined;
  for (const t of tokens) {
    const eq = timingSafeEqual(d, t.digest);
    if (eq && found === undefined) found = t;
  }
  return found;
}

/** A token with `read` scope, for this node's own calls to its peers (which share LAGOON_API_TOKENS). */
export function peerToken(tokens: readonly ApiToken[]): string | undefined {
  return tokens.find((t) => t.has('read'))?.bearer();
}
