import Fastify, { type FastifyInstance } from 'fastify';
import { parseJsonValue } from '../core/record.js';
import { LagoonError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { errorHandler } from './problem.js';
import { adminRoutes } from './routes-admin.js';
import { batchRoutes } from './routes-batch.js';
import { kvRoutes } from './routes-kv.js';

/** Builds the node's HTTP API (not listening yet). Every route validates with zod; errors leave as problem+json. */
export function buildApi(deps: ApiDeps, extra?: (app: FastifyInstance) => void): FastifyInstance {
  const app = Fastify({
    logger: false,
    // A 1024-byte key can be ~3 KiB URL-encoded.
    routerOptions: { maxParamLength: 4096 },
    bodyLimit: deps.config.maxValueBytes,
    keepAliveTimeout: 30_000,
  });
  app.setErrorHandler(errorHandler);
  // Our own JSON body parser instead of fastify's: a value must be stored exactly or refused with a reason
  // (`1e400`, integers beyond 2^53 and over-deep nesting are 400s, not 500s later), and `__proto__` /
  // `constructor` members are a value's data (fastify's parser refuses them; JSON.parse keeps them as own
  // properties, touching no prototype).
  app.removeContentTypeParser('application/json');
  // Values are JSON only: a text/plain body is refused (415), not stored as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    if (text === '') {
      done(
        new LagoonError('invalid_json', 'The body is empty; send a JSON value', { status: 400 }),
        undefined,
      );
      return;
    }
    const r = parseJsonValue(text as string);
    if (r.ok) done(null, r.value);
    else done(new LagoonError(r.error.code, r.error.reason, { status: 400 }), undefined);
  });
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
  extra?.(app);
  return app;
}
