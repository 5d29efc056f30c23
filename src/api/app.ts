import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { LagoonError } from '../errors.js';
import { authHook } from './auth.js';
import type { ApiDeps } from './deps.js';
import {
  advertiseKeepAlive,
  jsonBodyParser,
  limitHeaderCount,
  lingerOnUnreadBody,
  routerLimits,
  serverLimits,
} from './limits.js';
import { errorHandler } from './problem.js';
import { adminRoutes } from './routes-admin.js';
import { batchRoutes } from './routes-batch.js';
import { kvRoutes } from './routes-kv.js';
import { snapshotRoutes } from './routes-snapshot.js';

/** Builds the node's HTTP API (not listening yet). Every route validates with zod; errors leave as problem+json. */
export function buildApi(deps: ApiDeps, extra?: (app: FastifyInstance) => void): FastifyInstance {
  // fastify logs each request at info: below debug its logger starts at warn, so only errors a handler did not
  // expect are logged (and per-request lines appear at LOG_LEVEL=debug or trace).
  const http = deps.logger?.child(
    { component: 'http' },
    { level: deps.logger.isLevelEnabled('debug') ? deps.logger.level : 'warn' },
  ) as FastifyBaseLogger | undefined;
  const app = Fastify({
    ...(http ? { loggerInstance: http } : { logger: false }),
    // A stopping node answers new requests itself (problem+json, below), not with fastify's plain 503.
    return503OnClosing: false,
    // A 1024-byte key can be ~3 KiB URL-encoded. Query strings are decoded strictly (src/api/query.ts).
    routerOptions: { maxParamLength: 4096, ...routerLimits },
    bodyLimit: deps.config.maxValueBytes,
    // Timeouts against slow senders, header limits, problem+json for router and HTTP-parser errors (limits.ts).
    ...serverLimits(deps.config),
  });
  app.setErrorHandler(errorHandler);
  limitHeaderCount(app);
  lingerOnUnreadBody(app);
  advertiseKeepAlive(app);
  // Graceful shutdown: once the node is stopping, in-flight requests finish but new ones are turned away at once
  // (retryable, definite: nothing was done), so a client or balancer moves to another node.
  // Hooks on every request are callback-style, not async: an async hook costs a promise and a microtask turn
  // per request (CPU profile of a node under GET load).
  app.addHook('onRequest', (req, reply, done) => {
    if (!deps.stopping?.() || req.url === '/healthz') return done();
    reply.header('Connection', 'close');
    done(
      new LagoonError('node_stopping', 'This node is shutting down; send the request to another node', {
        status: 503,
        retryable: true,
      }),
    );
  });
  // API tokens (LAGOON_API_TOKENS, src/api/auth.ts): 401/403 before any body is read. Added before every route,
  // so it also covers the routes the node adds through `extra` (/metrics, /v1/lag, the dashboard).
  if (deps.config.apiTokens.length > 0) app.addHook('onRequest', authHook(deps.config.apiTokens));
  // Our own JSON body parser instead of fastify's (limits.ts): a value is stored exactly or refused with a
  // reason (`1e400`, integers beyond 2^53, over-deep nesting, bytes that are not UTF-8), and `__proto__` /
  // `constructor` members are a value's data.
  app.removeContentTypeParser('application/json');
  // Values are JSON only: a text/plain body is refused (415), not stored as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) =>
    jsonBodyParser(req, body as Buffer, done),
  );
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send({
        type: 'https://lagoon.dev/problems/no_route',
        title: 'Not Found',
        status: 404,
        detail: `No route ${req.method} ${req.url.split('?')[0]}`,
        code: 'no_route',
        retryable: false,
        definite: true,
      }),
  );
  kvRoutes(app, deps);
  batchRoutes(app, deps);
  adminRoutes(app, deps);
  snapshotRoutes(app, deps);
  extra?.(app);
  return app;
}
