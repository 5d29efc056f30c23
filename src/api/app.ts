import Fastify, { type FastifyInstance } from 'fastify';
import type { ApiDeps } from './deps.js';
import { errorHandler } from './problem.js';
import { adminRoutes } from './routes-admin.js';
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
  adminRoutes(app, deps);
  extra?.(app);
  return app;
}
