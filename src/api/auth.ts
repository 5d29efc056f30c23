import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { LagoonError } from '../errors.js';
import { sendProblem } from './problem.js';

/**
 * API authentication (off by default). `LAGOON_API_TOKENS` holds comma-separated `name:token:scopes`
 * entries, scopes joined by `+` from read, write, admin (`app:s3cret:read+write,dash:t0ken:read`); requests
 * send `Authorization: Bearer TOKEN`. One fastify onRequest hook (installed by buildApi before any route, so
 * it covers every route, also those the node adds through `extra`) answers 401 without a valid token and 403
 * without the route's scope. Scopes are independent: `admin` does not imply `read` or `write`.
 *
 * Token values are never logged, echoed in errors or shown in /v1/status: a configured token keeps only its
 * name, scopes and sha256 digest in the open (its value is a private field, left out of JSON and inspect), and
 * a presented token is compared, digest against digest with timingSafeEqual, with every configured entry.
 */

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** RFC 6750 b64token: what a Bearer credential may consist of (so no `,`, `:` or whitespace). */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

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

export type Credential = { kind: 'none' } | { kind: 'malformed' } | { kind: 'bearer'; token: string };

/** Reads an Authorization header: absent, not `Bearer <b64token>`, or the token. */
export function bearerCredential(header: string | string[] | undefined): Credential {
  if (header === undefined || header === '') return { kind: 'none' };
  if (Array.isArray(header)) return { kind: 'malformed' };
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!m || !B64TOKEN.test(m[1]!)) return { kind: 'malformed' };
  return { kind: 'bearer', token: m[1]! };
}

/** What a route needs: nothing (`open`), a scope, or — no route matched — any valid token (then 404). */
export type Requirement = 'open' | 'unrouted' | Scope;

/**
 * Every known route (method and fastify pattern) and what it needs. Anything not listed needs `admin` (fails
 * closed). Open without a token (SPEC §3: every route but the probes needs a token) are the probes and, as
 * the one exception, the dashboard's static shell (page, script, styles, vendored uPlot: the same bytes for
 * everyone, no data): a browser cannot put a Bearer header on a page navigation or a <script src>, so the page
 * must load before it can take its token (#token=… or a prompt); every piece of data it shows comes from routes
 * that need `read`. The API description (/openapi.json, /docs) needs `read` like any other read.
 */
export const ROUTE_SCOPES: Readonly<Record<string, 'open' | Scope>> = {
  'GET /healthz': 'open',
  'GET /readyz': 'open',
  'GET /dashboard': 'open',
  'GET /dashboard/': 'open',
  'GET /dashboard/app.js': 'open',
  'GET /dashboard/app.css': 'open',
  'GET /dashboard/vendor/uplot.js': 'open',
  'GET /dashboard/vendor/uplot.css': 'open',
  'GET /v1/kv/:key': 'read',
  'GET /v1/kv': 'read',
  'GET /v1/writes/:version': 'read',
  'GET /v1/batches/:id': 'read',
  'GET /v1/status': 'read',
  'GET /v1/digest': 'read',
  'GET /v1/lag': 'read',
  'GET /v1/lag/history': 'read',
  'GET /v1/events': 'read',
  'GET /metrics': 'read',
  'GET /openapi.json': 'read',
  'GET /docs': 'read',
  'PUT /v1/kv/:key': 'write',
  'DELETE /v1/kv/:key': 'write',
  'POST /v1/batch': 'write',
  'POST /v1/events': 'admin',
};

/**
 * The requirement of `method` on the matched route pattern `route` (undefined: no route matched). Fails closed:
 * a route in neither table needs `admin`. HEAD is GET's.
 */
export function requiredScope(method: string, route: string | undefined): Requirement {
  if (route === undefined) return 'unrouted';
  const key = `${method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase()} ${route}`;
  return Object.hasOwn(ROUTE_SCOPES, key) ? ROUTE_SCOPES[key]! : 'admin';
}

/** A token with `read` scope, for this node's own calls to its peers (which share LAGOON_API_TOKENS). */
export function peerToken(tokens: readonly ApiToken[]): string | undefined {
  return tokens.find((t) => t.has('read'))?.bearer();
}

const REALM = 'Bearer realm="lagoon"';

function unauthorized(req: FastifyRequest, reply: FastifyReply, detail: string, invalid: boolean) {
  reply.header('WWW-Authenticate', invalid ? `${REALM}, error="invalid_token"` : REALM);
  return sendProblem(reply, new LagoonError('unauthorized', detail, { status: 401 }), req.url.split('?')[0]);
}

/**
 * The onRequest hook that enforces the tokens (install it before any route). No route matched: 401 without a
 * valid token, else on to the 404 — so unauthenticated callers learn nothing about which routes exist.
 */
export function authHook(tokens: readonly ApiToken[]): onRequestAsyncHookHandler {
  return async (req, reply) => {
    const need = requiredScope(req.method, req.routeOptions.url);
    if (need === 'open') return;
    const cred = bearerCredential(req.headers.authorization);
    if (cred.kind === 'none') {
      return unauthorized(
        req,
        reply,
        'This node requires an API token: send Authorization: Bearer TOKEN (see LAGOON_API_TOKENS)',
        false,
      );
    }
    if (cred.kind === 'malformed')
      return unauthorized(req, reply, 'The Authorization header is not Bearer TOKEN', true);
    const token = matchToken(tokens, cred.token);
    if (token === undefined) return unauthorized(req, reply, 'The API token is not valid', true);
    if (need === 'unrouted' || token.has(need)) return;
    reply.header('WWW-Authenticate', `${REALM}, error="insufficient_scope", scope="${need}"`);
    return sendProblem(
      reply,
      new LagoonError(
        'forbidden',
        `Token '${token.name}' lacks the '${need}' scope that ${req.method} ${req.routeOptions.url} needs`,
        { status: 403, details: { scope: need } },
      ),
      req.url.split('?')[0],
    );
  };
}
