import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { type BatchOpInput, batchParts, encodePart } from '../core/batch.js';
import { validateKey } from '../core/keys.js';
import { encodeKey } from '../core/record.js';
import { encodeSession, mergeSession } from '../core/session.js';
import { formatVersion, parseIfMatch } from '../core/version.js';
import { LagoonError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { parseWith } from './parse.js';
import { badRequest } from './problem.js';
import { sessionFrom } from './read-levels.js';
import { BatchBody, BatchQuery, NoQuery } from './schemas.js';

/** Largest part record (one partition's share of a batch): below Kafka's default max.message.bytes (1 MiB). */
const MAX_PART_BYTES = 1_000_000;
const BATCH_ID_RE = /^[A-Za-z0-9._-]{1,256}$/;

/**
 * POST /v1/batch: several puts and deletes, all or nothing (one Kafka transaction, see log/batch-writer and
 * core/tx-sequencer). The answer waits (bounded) for this node's replica to decide the batch: its conditions
 * are judged in log order, and a batch can also lose a wait-for cycle against another node's batch.
 */
export function batchRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const P = deps.config.partitions;
  const idPrefix = `${deps.config.id}.${randomBytes(9).toString('base64url')}.`;
  let seq = 0;

  app.post(
    '/v1/batch',
    { bodyLimit: Math.max(4 * deps.config.maxValueBytes, 4 << 20) },
    async (req, reply) => {
      const q = parseWith(BatchQuery, req.query);
      const mode = req.headers['lagoon-write-mode'];
      if (mode !== undefined && String(mode) !== 'strict') {
        throw badRequest(
          'invalid_write_mode',
          'A batch is always strict (one Kafka transaction, now or never); Lagoon-Write-Mode may only be strict',
        );
      }
      // Headers a single write honours but a batch cannot: ignoring them would promise what does not happen
      // (a retried batch is not deduplicated; conditions go in each op as ifMatch / ifNoneMatch).
      for (const h of ['idempotency-key', 'if-match', 'if-none-match'] as const) {
        if (req.headers[h] !== undefined) {
          throw badRequest(
            'unsupported_header',
            h === 'idempotency-key'
              ? 'POST /v1/batch takes no Idempotency-Key: a batch is all or nothing; retry it as a whole after a definite failure, or ask GET /v1/batches/{id} after an unknown outcome'
              : `POST /v1/batch takes no ${h === 'if-match' ? 'If-Match' : 'If-None-Match'} header; give each op its own ifMatch / ifNoneMatch`,
          );
        }
      }
      const body = parseWith(BatchBody, req.body ?? null, 'invalid_batch');
      if (body.ops.length > deps.config.maxBatchOps) {
        throw badRequest(
          'batch_too_large',
          `A batch holds at most ${deps.config.maxBatchOps} ops; this one has ${body.ops.length}`,
        );
      }
      const seen = new Set<string>();
      const ops: BatchOpInput[] = body.ops.map((o, i) => {
        const v = validateKey(o.key);
        if (!v.ok) throw badRequest('invalid_key', `ops[${i}]: invalid key: ${v.reason}`);
        if (seen.has(o.key)) {
          throw badRequest(
            'batch_duplicate_key',
            `ops[${i}]: key ${JSON.stringify(o.key)} appears twice in the batch`,
          );
        }
        seen.add(o.key);
        let ifMatch: string | undefined;
        if (o.ifMatch !== undefined) {
          ifMatch = parseIfMatch(
            o.ifMatch.startsWith('"') || o.ifMatch === '*' ? o.ifMatch : `"${o.ifMatch}"`,
          );
          if (ifMatch === undefined) {
            throw badRequest('invalid_if_match', `ops[${i}]: ifMatch must be "*" or a version like "3-1042"`);
          }
        }
        if (ifMatch !== undefined && o.ifNoneMatch !== undefined) {
          throw badRequest('conflicting_conditions', `ops[${i}]: give ifMatch or ifNoneMatch, not both`);
        }
        if (o.op === 'put') {
          if (!('value' in o) || o.value === undefined)
            throw badRequest('invalid_batch', `ops[${i}]: a put needs a value`);
          return {
            op: 'put',
            key: o.key,
            value: o.value,
            ...(o.ttl !== undefined ? { ttlMs: o.ttl * 1000 } : {}),
            ...(ifMatch !== undefined ? { ifMatch } : {}),
            ...(o.ifNoneMatch !== undefined ? { ifNoneMatch: true as const } : {}),
          };
        }
        if ('value' in o && o.value !== undefined)
          throw badRequest('invalid_batch', `ops[${i}]: a delete carries no value`);
        if (o.ttl !== undefined) throw badRequest('invalid_batch', `ops[${i}]: ttl applies to put only`);
        return {
          op: 'del',
          key: o.key,
          ...(ifMatch !== undefined ? { ifMatch } : {}),
          ...(o.ifNoneMatch !== undefined ? { ifNoneMatch: true as const } : {}),
        };
      });
      if (!deps.batchWriter) {
        throw new LagoonError('not_a_writer', 'This node runs --role replica and takes no writes', {
          status: 503,
        });
      }
      const token = sessionFrom(deps, req.headers['lagoon-session']);
      const busy = ops.find((o) => deps.outbox?.hasPending(o.key));
      if (busy !== undefined) {
        throw new LagoonError(
          'buffered_writes_pending',
          `Buffered writes to ${JSON.stringify(busy.key)} are still on their way to the log; the batch was not applied.`,
          { status: 503, retryable: true, definite: true },
        );
      }
      const timeout = q.timeoutMs ?? deps.config.writeTimeoutMs;
      const deadline = Date.now() + timeout;
      const id = `${idPrefix}${++seq}`;
      const parts = batchParts(id, ops, P, deadline);
      const records = parts.map((p) => ({
        partition: p.partition,
        key: encodeKey(p.key),
        value: encodePart(p),
      }));
      const big = records.find((r) => r.value.length > MAX_PART_BYTES);
      if (big !== undefined) {
        throw new LagoonError(
          'batch_too_large',
          `The ops of partition ${big.partition} take ${big.value.length} bytes in one record; Kafka takes at most ${MAX_PART_BYTES}. Split the batch.`,
          { status: 413 },
        );
      }
      const started = performance.now();
      const done = (result: string) =>
        deps.observe?.write?.('batch', result, (performance.now() - started) / 1000);
      let ack: Awaited<ReturnType<NonNullable<ApiDeps['batchWriter']>['write']>>;
      try {
        ack = await deps.batchWriter.write(records, deadline);
      } catch (e) {
        done((e as LagoonError).code ?? 'error');
        if (e instanceof LagoonError && e.code === 'write_outcome_unknown') {
          throw new LagoonError(e.code, e.message, {
            status: 504,
            retryable: true,
            details: { batch: id, href: `/v1/batches/${id}` },
          });
        }
        throw e;
      }
      const positions = new Map(ack.parts.map((p) => [p.partition, p.offset + 1]));
      reply.header('Lagoon-Session', encodeSession(deps.sessionTag, mergeSession(token, positions)));
      const waitMs = q.timeoutMs ?? deps.config.readTimeoutMs;
      const reached = await deps.watch.waitFor(positions, waitMs, true);
      const outcome = reached ? deps.store.batchOutcome(id) : undefined;
      const offsetOf = new Map(ack.parts.map((p) => [p.partition, p.offset]));
      const opsOut = parts
        .flatMap((p) => p.body.items.map((it) => ({ i: it.i, key: it.key, partition: p.partition })))
        .sort((a, b) => a.i - b.i)
        .map((o) => ({
          key: o.key,
          version: formatVersion(o.partition, offsetOf.get(o.partition)!),
          partition: o.partition,
          offset: offsetOf.get(o.partition)!,
        }));
      if (outcome === undefined) {
        done('pending');
        reply.header('Location', `/v1/batches/${id}`);
        return reply.code(202).send({ batch: id, status: 'pending', href: `/v1/batches/${id}`, ops: opsOut });
      }
      if (outcome.status === 'applied') {
        done('ok');
        return { batch: id, status: 'applied', ops: opsOut };
      }
      done(outcome.reason ?? 'rejected');
      throw batchRejected(
        id,
        outcome.reason,
        outcome.op,
        outcome.op === null ? undefined : ops[outcome.op]?.key,
      );
    },
  );

  app.get('/v1/batches/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    parseWith(NoQuery, req.query);
    if (!BATCH_ID_RE.test(id)) throw badRequest('invalid_batch_id', 'Not a batch id this API hands out');
    const outcome = deps.store.batchOutcome(id);
    if (outcome === undefined) return { batch: id, status: 'pending', reason: null, op: null };
    return { batch: id, status: outcome.status, reason: outcome.reason, op: outcome.op };
  });
}

/** The answer for a batch the replicas rejected: nothing of it applied anywhere. */
function batchRejected(
  id: string,
  reason: string | null,
  op: number | null,
  key: string | undefined,
): LagoonError {
  const details = { batch: id, reason, op, ...(key !== undefined ? { key } : {}) };
  if (reason === 'batch_conflict') {
    return new LagoonError(
      'batch_conflict',
      'The batch crossed another batch on the same partitions in opposite log orders; every replica rejected this one. Nothing was applied; retry.',
      { status: 409, retryable: true, definite: true, details },
    );
  }
  if (reason === 'deadline_passed') {
    return new LagoonError(
      'write_deadline_passed',
      'A part of the batch reached Kafka after its deadline; nothing was applied. Retry.',
      {
        status: 503,
        retryable: true,
        definite: true,
        details,
      },
    );
  }
  return new LagoonError(
    'precondition_failed',
    `Condition of ops[${op ?? '?'}]${key !== undefined ? ` (${JSON.stringify(key)})` : ''} not met: ${reason ?? 'rejected'}; nothing of the batch was applied`,
    { status: 412, details },
  );
}
