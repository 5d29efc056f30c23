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
    const topicProblem = deps.topicProblem?.();
    const outbox = deps.outbox?.stats(now) ?? { records: 0, oldestSeconds: 0, max: deps.config.outboxMax };
    return {
      node: deps.config.id,
      role: deps.config.role,
      // Present only on a node started with LAGOON_TEST_BREAK (src/testing/breaks.ts): deliberately broken.
      ...(deps.config.testBreaks.length > 0 ? { testBreaks: deps.config.testBreaks } : {}),
      topic: deps.config.topic,
      // Writes are refused while this is set (503); reasons are sentences that say the way out.
      topicProblem: topicProblem ?? null,
      replica: {
        state: replica.state,
        group: replica.group,
        lastError: replica.lastError ?? null,
        problem: replica.problem ?? null,
        misrouted: { count: replica.misrouted?.count ?? 0, last: replica.misrouted?.last ?? null },
      },
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
      // The default for writes without a Lagoon-Write-Mode header, and the buffered writes waiting here.
      writeMode: deps.config.writeMode,
      outboxDepth: outbox.records,
      outbox,
      bookkeepingRetentionMs: deps.config.bookkeepingRetentionMs,
    };
  });

  app.get('/v1/digest', async () => ({
    node: deps.config.id,
    partitions: deps.store.digests(),
  }));

  app.get('/healthz', async () => ({ status: 'ok', node: deps.config.id }));

  app.get('/readyz', async (_req, reply) => {
    const r = deps.readiness?.() ?? { ready: true };
    if (!r.ready) {
      throw new LagoonError(r.code, r.reason, { status: 503, retryable: r.retryable, details: r.details });
    }
    return reply.send({ status: 'ready', node: deps.config.id });
  });

  app.get('/openapi.json', async () => doc);
  app.get('/docs', async (_req, reply) => reply.type('text/html; charset=utf-8').send(docsPage(doc)));
}
