import type { FastifyInstance } from 'fastify';
import { LagoonError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { docsPage, openApiDocument } from './openapi.js';

export function adminRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const doc = openApiDocument(deps.config);

  app.get('/v1/status', async () => {
    const now = Date.now();
    const view = deps.monitor.snapshot();
    const replica = deps.replicaStatus();
    return {
      node: deps.config.id,
      role: deps.config.role,
      topic: deps.config.topic,
      replica: { state: replica.state, group: replica.group, lastError: replica.lastError ?? null },
      partitions: deps.store.partitionInfo().map((p) => {
        const stale = deps.freshness.stalenessMs(p.partition, now);
        return {
          partition: p.partition,
          appliedOffset: p.appliedOffset,
          endOffset: Math.max(deps.freshness.endOffset(p.partition), p.appliedOffset),
          lagRecords: deps.freshness.lagRecords(p.partition),
          stalenessMs: Number.isFinite(stale) ? stale : null,
          recordsApplied: p.recordsApplied,
        };
      }),
      brokers: { reachable: view.reachable, seen: view.brokers, lastError: view.lastError ?? null },
      writeMode: 'strict',
      outboxDepth: 0,
    };
  });

  app.get('/v1/digest', async () => ({
    node: deps.config.id,
    partitions: deps.store.digests(),
  }));

  app.get('/healthz', async () => ({ status: 'ok', node: deps.config.id }));

  app.get('/readyz', async (_req, reply) => {
    const replica = deps.replicaStatus();
    const ready = deps.config.role === 'api' || replica.state === 'running';
    if (!ready) {
      throw new LagoonError('not_ready', `Replica is ${replica.state}`, { status: 503, retryable: true });
    }
    return reply.send({ status: 'ready', node: deps.config.id });
  });

  app.get('/openapi.json', async () => doc);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(doc)));
}
