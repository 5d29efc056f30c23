import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { type ApiToken, B64TOKEN, matchToken, type Scope } from '../core/api-tokens.js';
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
  // A snapshot is the whole store: what `read` may see anyway, all at once (peers bootstrap with their read token).
  'GET /v1/snapshot': 'read',
  'GET /v1/snapshots': 'read',
  'POST /v1/snapshots': 'admin',
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
