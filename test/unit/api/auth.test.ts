import { inspect } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../../src/api/app.js';
import { bearerCredential, ROUTE_SCOPES, requiredScope } from '../../../src/api/auth.js';
import type { ApiDeps } from '../../../src/api/deps.js';
import { openApiDocument } from '../../../src/api/openapi.js';
import { nodeConfigFrom } from '../../../src/cli/node.js';
import { nodeEnv, parseNodeConfig } from '../../../src/config.js';
import { matchToken, parseApiTokens, peerToken } from '../../../src/core/api-tokens.js';
import { dashboardAssets, dashboardRoutes } from '../../../src/dashboard/routes.js';
import type { EventLog } from '../../../src/lag/events.js';
import type { LagHistory } from '../../../src/lag/history.js';
import { lagRoutes } from '../../../src/lag/routes.js';
import type { LagTracker } from '../../../src/lag/tracker.js';

const base = { id: 'n1', port: 8081, db: '/tmp/x.db', kafka: { brokers: '127.0.0.1:9092' } };
const TOKENS = 'app:s3cretW:read+write,dash:t0kenR:read,ops:adm1nX:admin';

function parsed(raw: string) {
  const r = parseApiTokens(raw);
  if (!r.ok) throw new Error(r.error);
  return r.tokens;
}

function refused(raw: string): string {
  const r = parseApiTokens(raw);
  if (r.ok) throw new Error(`accepted: ${raw}`);
  return r.error;
}

describe('LAGOON_API_TOKENS parsing', () => {
  it('is off when absent or empty', () => {
    expect(parsed('')).toEqual([]);
    expect(parsed('  ')).toEqual([]);
    expect(parseApiTokens(undefined)).toEqual({ ok: true, tokens: [] });
  });

  it('reads name:token:scopes entries, scopes joined by +', () => {
    const [app, dash, ops] = parsed(' app:s3cretW:read+write , dash:t0kenR:read,ops:adm1nX:admin');
    expect(app!.name).toBe('app');
    expect([...app!.scopes]).toEqual(['read', 'write']);
    expect([...dash!.scopes]).toEqual(['read']);
    // Scopes are independent: admin implies neither read nor write.
    expect(ops!.has('admin')).toBe(true);
    expect(ops!.has('read')).toBe(false);
    expect(app!.bearer()).toBe('s3cretW');
  });

  it('refuses malformed entries, naming them by position and never echoing a value', () => {
    const cases: Array<[string, RegExp]> = [
      ['app:s3cretW', /entry 1 of 1 has 2 :-separated fields/],
      ['s3cretW', /entry 1 of 1 has 1 :-separated fields/],
      ['app:s3cretW:read:extra', /has 4 :-separated fields/],
      ['app:s3cretW:read,,dash:t0kenR:read', /entry 2 of 3 is empty/],
      ['app:s3cretW:read,', /entry 2 of 2 is empty/],
      ['a pp:s3cretW:read', /name that is not/],
      ['app::read', /empty token/],
      ['app:s3c ret:read', /characters a Bearer token cannot carry/],
      ['app:s3cretW:read+rwx', /1 unknown or empty scope/],
      ['app:s3cretW:', /unknown or empty scope/],
      ['app:s3cretW:read+', /unknown or empty scope/],
      ['app:s3cretW:read+read', /repeats a scope/],
      ['app:s3cretW:read,app:t0kenR:write', /entry 2 of 2 repeats the name/],
      ['app:s3cretW:read,dash:s3cretW:write', /entry 2 of 2 repeats the token/],
    ];
    for (const [raw, why] of cases) {
      const msg = refused(raw);
      expect(msg, raw).toMatch(why);
      expect(msg, raw).toContain('LAGOON_API_TOKENS');
      expect(msg, raw).not.toContain('s3cret');
      expect(msg, raw).not.toContain('t0kenR');
      expect(msg, raw).not.toContain('rwx');
    }
  });

  it('a wrongly ordered entry (token first) is refused without showing the token', () => {
    const msg = refused('s3cretW:read+write:app');
    expect(msg).toMatch(/unknown or empty scope/);
    expect(msg).not.toContain('s3cretW');
  });

  it('makes the node configuration refuse to start with a clear error, without the token', () => {
    expect(() => parseNodeConfig({ ...base, apiTokens: 'app:s3cretW:read+rwx' })).toThrow(
      /Invalid node configuration: apiTokens: LAGOON_API_TOKENS entry 1/,
    );
    try {
      nodeConfigFrom(
        { id: 'n1' },
        { LAGOON_KAFKA_BROKERS: '127.0.0.1:9092', LAGOON_API_TOKENS: 'x:s3cretW' },
      );
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('bad_config');
      expect((e as Error).message).toMatch(/LAGOON_API_TOKENS/);
      expect((e as Error).message).not.toContain('s3cret');
    }
  });

  it('reaches the node config from LAGOON_API_TOKENS, and never shows the values', () => {
    expect(nodeEnv({ LAGOON_API_TOKENS: TOKENS }).apiTokens).toBe(TOKENS);
    const c = nodeConfigFrom(
      { id: 'n1' },
      { LAGOON_KAFKA_BROKERS: '127.0.0.1:9092', LAGOON_API_TOKENS: TOKENS },
    );
    expect(c.apiTokens.map((t) => t.name)).toEqual(['app', 'dash', 'ops']);
    expect(parseNodeConfig(base).apiTokens).toEqual([]);
    for (const shown of [
      JSON.stringify(c),
      inspect(c, { depth: 10 }),
      String(c.apiTokens),
      `${c.apiTokens[0]}`,
    ]) {
      for (const secret of ['s3cretW', 't0kenR', 'adm1nX']) expect(shown).not.toContain(secret);
    }
    expect(JSON.parse(JSON.stringify(c.apiTokens))).toEqual([
      { name: 'app', scopes: ['read', 'write'] },
      { name: 'dash', scopes: ['read'] },
      { name: 'ops', scopes: ['admin'] },
    ]);
  });
});

describe('matching a presented token', () => {
  const tokens = parsed(TOKENS);

  it('finds the entry of a configured token and nothing else', () => {
    expect(matchToken(tokens, 's3cretW')?.name).toBe('app');
    expect(matchToken(tokens, 't0kenR')?.name).toBe('dash');
    expect(matchToken(tokens, 'adm1nX')?.name).toBe('ops');
    for (const wrong of ['', 's3cret', 's3cretW ', 's3cretWW', 'S3CRETW', 'app', 'read']) {
      expect(matchToken(tokens, wrong), wrong).toBeUndefined();
    }
    expect(matchToken([], 's3cretW')).toBeUndefined();
  });

  it('reads Authorization: Bearer TOKEN (scheme in any case) and nothing else', () => {
    expect(bearerCredential(undefined)).toEqual({ kind: 'none' });
    expect(bearerCredential('')).toEqual({ kind: 'none' });
    expect(bearerCredential('Bearer s3cretW')).toEqual({ kind: 'bearer', token: 's3cretW' });
    expect(bearerCredential('bearer  abc+/=')).toEqual({ kind: 'bearer', token: 'abc+/=' });
    for (const bad of [
      'Basic YWxhZGRpbjpvcGVu',
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a,b',
      's3cretW',
    ]) {
      expect(bearerCredential(bad), bad).toEqual({ kind: 'malformed' });
    }
    expect(bearerCredential(['Bearer a', 'Bearer b'])).toEqual({ kind: 'malformed' });
  });

  it('gives peers a token with read scope', () => {
    expect(peerToken(tokens)).toBe('s3cretW');
    expect(peerToken(parsed('ops:adm1nX:admin,dash:t0kenR:read'))).toBe('t0kenR');
    expect(peerToken(parsed('ops:adm1nX:admin'))).toBeUndefined();
    expect(peerToken([])).toBeUndefined();
  });
});

describe('route scopes', () => {
  it('maps reads, writes, admin actions and the open routes; unknown routes need admin', () => {
    expect(requiredScope('GET', '/v1/kv/:key')).toBe('read');
    expect(requiredScope('HEAD', '/v1/kv/:key')).toBe('read');
    expect(requiredScope('GET', '/v1/kv')).toBe('read');
    expect(requiredScope('PUT', '/v1/kv/:key')).toBe('write');
    expect(requiredScope('DELETE', '/v1/kv/:key')).toBe('write');
    expect(requiredScope('POST', '/v1/batch')).toBe('write');
    expect(requiredScope('GET', '/metrics')).toBe('read');
    expect(requiredScope('GET', '/v1/lag')).toBe('read');
    expect(requiredScope('POST', '/v1/events')).toBe('admin');
    expect(requiredScope('GET', '/healthz')).toBe('open');
    expect(requiredScope('GET', '/readyz')).toBe('open');
    expect(requiredScope('POST', '/healthz')).toBe('admin');
    expect(requiredScope('GET', '/v1/future-route')).toBe('admin');
    expect(requiredScope('GET', '/v1/snapshot')).toBe('read');
    expect(requiredScope('GET', '/v1/snapshots')).toBe('read');
    expect(requiredScope('POST', '/v1/snapshots')).toBe('admin');
    expect(requiredScope('PATCH', '/v1/kv/:key')).toBe('admin');
    expect(requiredScope('GET', 'toString')).toBe('admin');
    expect(requiredScope('GET', undefined)).toBe('unrouted');
  });

  it('leaves exactly the dashboard static shell open under /dashboard', () => {
    for (const url of Object.keys(dashboardAssets())) expect(requiredScope('GET', url), url).toBe('open');
    const open = Object.entries(ROUTE_SCOPES)
      .filter(([, s]) => s === 'open')
      .map(([k]) => k);
    expect(open.filter((k) => !k.startsWith('GET /dashboard')).sort()).toEqual([
      'GET /healthz',
      'GET /readyz',
    ]);
    expect(requiredScope('GET', '/openapi.json')).toBe('read');
    expect(requiredScope('GET', '/docs')).toBe('read');
  });
});

/** The real API (buildApi) with the node's `extra` routes, on stub dependencies: enough for the hook. */
function api(apiTokens: string): FastifyInstance {
  const config = parseNodeConfig({ ...base, apiTokens });
  const deps = {
    config,
    sessionTag: 'test',
    store: { digests: () => [], partitionInfo: () => [] },
    replicaStatus: () => ({ state: 'running', group: 'g', lastError: undefined }),
    readiness: () => ({ ready: true }),
  } as unknown as ApiDeps;
  return buildApi(deps, (app) => {
    lagRoutes(
      app,
      { report: () => ({ replicas: [] }) } as unknown as LagTracker,
      { list: () => [], add: () => {} } as unknown as EventLog,
      { query: () => ({ t: [] }) } as unknown as LagHistory,
    );
    dashboardRoutes(app);
    app.get('/metrics', async (_req, reply) => reply.type('text/plain').send('# metrics\n'));
    // A route nobody put in the scope table: needs admin.
    app.get('/v1/unlisted', async () => ({ ok: true }));
  });
}

describe('the onRequest hook on the real API', () => {
  let app: FastifyInstance;
  const as = (token?: string) => (token ? { authorization: `Bearer ${token}` } : {});
  beforeAll(async () => {
    app = api(TOKENS);
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  it('every route in the scope table exists', () => {
    for (const key of Object.keys(ROUTE_SCOPES)) {
      const [method, url] = key.split(' ') as [string, string];
      expect(app.hasRoute({ method: method as 'GET', url }), key).toBe(true);
    }
  });

  it('401 problem+json with WWW-Authenticate without a token, or with a wrong one', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/status' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['content-type']).toContain('application/problem+json');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="lagoon"');
    expect(none.json()).toMatchObject({
      status: 401,
      code: 'unauthorized',
      retryable: false,
      definite: true,
    });
    for (const h of [{ authorization: 'Bearer nope' }, { authorization: 'Basic s3cretW' }]) {
      const r = await app.inject({ method: 'GET', url: '/v1/status', headers: h });
      expect(r.statusCode).toBe(401);
      expect(r.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(r.json().code).toBe('unauthorized');
      expect(r.body).not.toContain('nope');
    }
  });

  it('403 without the scope, before the body is read; the scope is named, the token is not', async () => {
    const r = await app.inject({
      method: 'PUT',
      url: '/v1/kv/k',
      headers: { ...as('t0kenR'), 'content-type': 'application/json' },
      payload: '{not json',
    });
    expect(r.statusCode).toBe(403);
    expect(r.headers['content-type']).toContain('application/problem+json');
    expect(r.headers['www-authenticate']).toContain('error="insufficient_scope", scope="write"');
    expect(r.json()).toMatchObject({ code: 'forbidden', scope: 'write' });
    expect(r.json().detail).toContain("'dash'");
    expect(r.body).not.toContain('t0kenR');
    // With the scope, the request gets as far as the body parser.
    const w = await app.inject({
      method: 'PUT',
      url: '/v1/kv/k',
      headers: { ...as('s3cretW'), 'content-type': 'application/json' },
      payload: '{not json',
    });
    expect(w.statusCode).toBe(400);
    const post = await app.inject({ method: 'POST', url: '/v1/batch', headers: as('t0kenR'), payload: {} });
    expect(post.statusCode).toBe(403);
  });

  it('covers the routes added through `extra`: /metrics, /v1/lag, events', async () => {
    for (const url of ['/metrics', '/v1/lag', '/v1/lag/history', '/v1/events']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
      expect((await app.inject({ url, headers: as('adm1nX') })).statusCode, url).toBe(403);
      expect((await app.inject({ url, headers: as('t0kenR') })).statusCode, url).toBe(200);
    }
    const event = { kind: 'deploy_start', message: 'x' };
    expect((await app.inject({ method: 'POST', url: '/v1/events', payload: event })).statusCode).toBe(401);
    const byWriter = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: event,
      headers: as('s3cretW'),
    });
    expect(byWriter.statusCode).toBe(403);
    expect(byWriter.json().scope).toBe('admin');
    const byAdmin = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: event,
      headers: as('adm1nX'),
    });
    expect(byAdmin.statusCode).toBe(201);
  });

  it('fails closed: a route missing from the table needs admin', async () => {
    expect((await app.inject({ url: '/v1/unlisted' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/unlisted', headers: as('s3cretW') })).statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/unlisted', headers: as('adm1nX') })).statusCode).toBe(200);
  });

  it('unknown routes: 401 without a valid token, 404 with any valid one', async () => {
    const anon = await app.inject({ url: '/v1/nothing-here' });
    expect(anon.statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/nothing-here', headers: as('nope') })).statusCode).toBe(401);
    const known = await app.inject({ method: 'PATCH', url: '/v1/kv/k', headers: as('adm1nX') });
    expect(known.statusCode).toBe(404);
    expect(known.json().code).toBe('no_route');
    expect((await app.inject({ url: '/v1/nothing-here', headers: as('t0kenR') })).statusCode).toBe(404);
  });

  it('leaves the probes and the dashboard shell open; the API description needs read', async () => {
    for (const url of ['/openapi.json', '/docs']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
      expect((await app.inject({ url, headers: as('t0kenR') })).statusCode, url).toBe(200);
    }
    for (const url of ['/healthz', '/readyz', ...Object.keys(dashboardAssets())]) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(200);
    }
    expect((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'HEAD', url: '/v1/lag' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/dashboard/' })).statusCode).toBe(301);
  });

  it('a read token reads, a write token without read does not', async () => {
    expect((await app.inject({ url: '/v1/digest', headers: as('t0kenR') })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/digest', headers: as('adm1nX') })).statusCode).toBe(403);
  });
});

describe('without LAGOON_API_TOKENS', () => {
  it('asks for no token anywhere', async () => {
    const app = api('');
    try {
      for (const url of ['/v1/digest', '/metrics', '/v1/lag', '/v1/unlisted']) {
        expect((await app.inject({ url })).statusCode, url).toBe(200);
      }
      expect((await app.inject({ url: '/v1/nothing-here' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('OpenAPI', () => {
  // biome-ignore lint/suspicious/noExplicitAny: the document is walked field by field
  const doc = (apiTokens: string) => openApiDocument(parseNodeConfig({ ...base, apiTokens })) as any;

  it('always describes the bearer scheme; requires it, with 401/403, only on a node with tokens', () => {
    const off = doc('');
    expect(off.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(off.security).toBeUndefined();
    expect(off.paths['/v1/kv/{key}'].put.responses[401]).toBeUndefined();

    const on = doc(TOKENS);
    expect(on.security).toEqual([{ bearerAuth: [] }]);
    expect(on.paths['/healthz'].get.security).toEqual([]);
    expect(on.paths['/readyz'].get.security).toEqual([]);
    expect(on.paths['/healthz'].get.responses[401]).toBeUndefined();
    const put = on.paths['/v1/kv/{key}'].put;
    expect(put.responses[401].content['application/problem+json']).toBeDefined();
    expect(put.responses[403].description).toContain('write');
    expect(on.paths['/v1/kv/{key}'].get.responses[403].description).toContain('read');
    expect(on.paths['/v1/batch'].post.responses[403].description).toContain('write');
    // Every secured operation has both; every security requirement names a declared scheme.
    // biome-ignore lint/suspicious/noExplicitAny: the document is walked field by field
    for (const [path, ops] of Object.entries(on.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        if (op.security?.length === 0) continue;
        expect(op.responses[401], `${method} ${path}`).toBeDefined();
        expect(op.responses[403], `${method} ${path}`).toBeDefined();
      }
    }
    for (const req of on.security) {
      for (const name of Object.keys(req)) expect(on.components.securitySchemes[name]).toBeDefined();
    }
    expect(JSON.stringify(on)).not.toContain('s3cretW');
  });
});
