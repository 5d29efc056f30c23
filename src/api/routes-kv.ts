import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validateKey } from '../core/keys.js';
import { partitionOf } from '../core/partitioner.js';
import {
  type DelOp,
  encodeKey,
  encodeRecord,
  MAX_IDEM_LENGTH,
  type PutOp,
  requestFingerprint,
} from '../core/record.js';
import { encodeSession, mergeSession } from '../core/session.js';
import { etagOf, formatVersion, parseIfMatch, parseVersion } from '../core/version.js';
import { LagoonError } from '../errors.js';
import { isOutboxId, newOutboxId, outboxIdemKey } from '../outbox/outbox.js';
import type { WriteOutcome } from '../store/replica-store.js';
import {
  answerBuffered,
  buffer,
  bufferedRead,
  headerValue,
  parseReadBuffered,
  parseWriteMode,
  shouldBuffer,
  writeStatusById,
} from './buffered.js';
import type { ApiDeps } from './deps.js';
import { parseWith } from './parse.js';
import { badRequest } from './problem.js';
import {
  admitRead,
  freshEndAgeMs,
  type ReadParams,
  sessionAfterRead,
  sessionFrom,
  sessionWith,
} from './read-levels.js';
import { NoQuery, ReadQuery, ScanQuery, WriteQuery } from './schemas.js';

const IDEM_RE = /^[\x21-\x7e]+$/;

function keyFrom(req: FastifyRequest): string {
  const key = (req.params as { key?: string }).key ?? '';
  const v = validateKey(key);
  if (!v.ok) throw badRequest('invalid_key', `Invalid key: ${v.reason}`);
  return key;
}

/** maxStaleMs / maxLag bound a bounded read only: with another level they would be silently ignored. */
function checkBounds(q: ReadParams): void {
  if (q.consistency !== 'bounded' && (q.maxStaleMs !== undefined || q.maxLag !== undefined)) {
    throw badRequest(
      'conflicting_query',
      `maxStaleMs and maxLag apply to consistency=bounded only, not to consistency=${q.consistency}`,
    );
  }
}

function stalenessHeader(ms: number): string {
  return Number.isFinite(ms) ? String(Math.round(ms)) : 'unknown';
}

/** The read headers every read answer carries, 404s included. */
function readHeaders(
  deps: ApiDeps,
  reply: FastifyReply,
  params: ReadParams,
  parts: number[],
  session: string,
) {
  const now = Date.now();
  // Both are upper bounds: 'unknown' when the node has no recent end offset to bound them with.
  const lag = Math.max(0, ...parts.map((p) => deps.freshness.lagRecordsBound(p, now, freshEndAgeMs(deps))));
  const stale = Math.max(0, ...parts.map((p) => deps.freshness.stalenessMs(p, now)));
  reply.header('Lagoon-Served-By', deps.config.id);
  reply.header('Lagoon-Lag-Records', Number.isFinite(lag) ? String(lag) : 'unknown');
  reply.header('Lagoon-Staleness-Ms', stalenessHeader(stale));
  reply.header('Lagoon-Consistency', params.consistency);
  reply.header('Lagoon-Session', session);
}

export function kvRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const P = deps.config.partitions;
  // Write ids must never repeat, across restarts too: the replica takes a second record with a known wid for a
  // copy of the same write. A random boot id per process makes the sequence unique.
  const widPrefix = `${deps.config.id}.${randomBytes(9).toString('base64url')}.`;
  let writeSeq = 0;

  app.get('/v1/kv/:key', async (req, reply) => {
    const started = performance.now();
    const key = keyFrom(req);
    const params = parseWith(ReadQuery, req.query);
    checkBounds(params);
    const readBuffered = parseReadBuffered(req.headers['lagoon-read-buffered']);
    const token = sessionFrom(deps, req.headers['lagoon-session']);
    const partition = partitionOf(key, P);
    try {
      const wait = admitRead(deps, params, [partition], token);
      if (wait !== undefined) await wait;
    } catch (e) {
      deps.observe?.read?.(
        params.consistency,
        (e as LagoonError).code ?? 'error',
        (performance.now() - started) / 1000,
      );
      throw e;
    }
    // The row and its partition's applied offset in one read: the session token is the state served.
    const { entry, appliedOffset } = deps.store.readKey(key);
    readHeaders(
      deps,
      reply,
      params,
      [partition],
      sessionWith(deps, token, new Map([[partition, appliedOffset]])),
    );
    if (readBuffered) {
      // Asked for: this node's own buffered writes, not yet in the log, read over the log's view.
      const fromOutbox = bufferedRead(deps, reply, key);
      if (fromOutbox !== undefined) {
        deps.observe?.read?.(params.consistency, 'outbox', (performance.now() - started) / 1000);
        return fromOutbox;
      }
      reply.header('Lagoon-Read-Source', 'replica');
    }
    if (!entry) {
      deps.observe?.read?.(params.consistency, 'not_found', (performance.now() - started) / 1000);
      throw new LagoonError('not_found', `No value for key ${JSON.stringify(key)}`, { status: 404 });
    }
    reply.header('ETag', etagOf(entry.version));
    deps.observe?.read?.(params.consistency, 'ok', (performance.now() - started) / 1000);
    // The stored value is canonical JSON text already: splice it in rather than parse and re-serialise.
    return reply
      .type('application/json')
      .send(
        `{"key":${JSON.stringify(entry.key)},"value":${entry.value},"version":${JSON.stringify(entry.version)},"updatedAt":${entry.updatedAt}${entry.expiresAt === null ? '' : `,"expiresAt":${entry.expiresAt}`}}`,
      );
  });

  app.get('/v1/kv', async (req, reply) => {
    const q = parseWith(ScanQuery, req.query);
    checkBounds(q);
    if (q.prefix !== '') {
      // A prefix of a key: the key rules, but it may be empty (no prefix).
      const v = validateKey(q.prefix);
      if (!v.ok) throw badRequest('invalid_prefix', `Invalid prefix: ${v.reason.replace(/^key/, 'prefix')}`);
    }
    const token = sessionFrom(deps, req.headers['lagoon-session']);
    const all = Array.from({ length: P }, (_, i) => i);
    let after: string | undefined;
    if (q.cursor !== undefined) {
      after = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!validateKey(after).ok || Buffer.from(after, 'utf8').toString('base64url') !== q.cursor) {
        throw badRequest('invalid_cursor', 'The cursor is not one this API returned');
      }
      // A cursor is the last key of a page of the same scan, so it starts with the prefix.
      if (!after.startsWith(q.prefix)) {
        throw badRequest('invalid_cursor', 'The cursor belongs to a scan with another prefix');
      }
    }
    await admitRead(deps, q, all, token);
    const rows = deps.store.scan({ prefix: q.prefix, after, limit: q.limit + 1 });
    const page = rows.slice(0, q.limit);
    const more = rows.length > q.limit;
    readHeaders(deps, reply, q, all, sessionAfterRead(deps, token, all));
    const items = page
      .map(
        (e) =>
          `{"key":${JSON.stringify(e.key)},"value":${e.value},"version":${JSON.stringify(e.version)},"updatedAt":${e.updatedAt}${e.expiresAt === null ? '' : `,"expiresAt":${e.expiresAt}`}}`,
      )
      .join(',');
    const next =
      more && page.length > 0
        ? JSON.stringify(Buffer.from(page[page.length - 1]!.key).toString('base64url'))
        : 'null';
    return reply.type('application/json').send(`{"items":[${items}],"nextCursor":${next}}`);
  });

  const write = (op: 'put' | 'del') => async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const key = keyFrom(req);
    const q = parseWith(WriteQuery, req.query);
    if (op === 'del' && q.ttl !== undefined) throw badRequest('invalid_query', 'ttl applies to PUT only');
    const mode = parseWriteMode(req.headers['lagoon-write-mode'], deps.config.writeMode);
    const ifMatchRaw = req.headers['if-match'];
    const ifNoneMatchRaw = req.headers['if-none-match'];
    let ifMatch: string | undefined;
    if (ifMatchRaw !== undefined) {
      ifMatch = parseIfMatch(String(ifMatchRaw));
      if (ifMatch === undefined) {
        throw badRequest('invalid_if_match', 'If-Match must be * or one strong ETag like "3-1042"');
      }
    }
    if (ifNoneMatchRaw !== undefined && headerValue(ifNoneMatchRaw) !== '*') {
      throw badRequest('invalid_if_none_match', 'If-None-Match supports only * (create if absent)');
    }
    if (ifMatch !== undefined && ifNoneMatchRaw !== undefined) {
      throw badRequest('conflicting_conditions', 'Send If-Match or If-None-Match, not both');
    }
    const idemRaw = req.headers['idempotency-key'];
    let idem: string | undefined;
    if (idemRaw !== undefined) {
      idem = String(idemRaw);
      if (idem.length === 0 || idem.length > MAX_IDEM_LENGTH || !IDEM_RE.test(idem)) {
        throw badRequest(
          'invalid_idempotency_key',
          `Idempotency-Key: 1-${MAX_IDEM_LENGTH} visible ASCII characters`,
        );
      }
    }
    if (op === 'put' && req.body === undefined)
      throw badRequest('invalid_json', 'Send the value as a JSON body');
    if (op === 'del' && req.body !== undefined) {
      throw badRequest('unexpected_body', 'A DELETE carries no body (to write a value, PUT it)');
    }
    const conditional = ifMatch !== undefined || ifNoneMatchRaw !== undefined;
    const token = sessionFrom(deps, req.headers['lagoon-session']);
    const partition = partitionOf(key, P);
    // A buffered-mode write carries an idempotency key from the start (the client's, or one made for it), so
    // that any resend of its record — after an unknown outcome, or from the outbox after a restart — is applied
    // once. It does not make the request wait for a verdict as a client's key does.
    const outboxId = mode === 'buffered' ? newOutboxId() : undefined;
    // A strict write's record carries its deadline: every replica drops it if Kafka appended it later, so a
    // write answered 504 at its deadline never applies afterwards (it cannot overwrite newer writes). Buffered
    // writes carry none: landing later is their point.
    const writeTimeout = q.timeoutMs ?? deps.config.writeTimeoutMs;
    const writeDeadline = Date.now() + writeTimeout;
    const dl = mode === 'strict' ? { dl: writeDeadline } : {};
    const recordIdem = idem ?? (outboxId === undefined ? undefined : outboxIdemKey(outboxId));
    const body: PutOp | DelOp =
      op === 'put'
        ? {
            v: 1,
            op: 'put',
            value: req.body,
            wid: `${widPrefix}${++writeSeq}`,
            ...(ifMatch !== undefined ? { ifMatch } : {}),
            ...(ifNoneMatchRaw !== undefined ? { ifNoneMatch: true as const } : {}),
            ...(recordIdem !== undefined ? { idem: recordIdem } : {}),
            ...(q.ttl !== undefined ? { ttlMs: q.ttl * 1000 } : {}),
            ...dl,
          }
        : {
            v: 1,
            op: 'del',
            wid: `${widPrefix}${++writeSeq}`,
            ...(ifMatch !== undefined ? { ifMatch } : {}),
            ...(ifNoneMatchRaw !== undefined ? { ifNoneMatch: true as const } : {}),
            ...(recordIdem !== undefined ? { idem: recordIdem } : {}),
            ...dl,
          };
    const done = (result: string) => deps.observe?.write?.(op, result, (performance.now() - started) / 1000);

    // Only a write with an idempotency key (the client's, or the one a buffered write carries) is ever matched by
    // its fingerprint: a plain write skips the hash.
    const fp = recordIdem === undefined ? undefined : requestFingerprint({ ...body, key });
    // A retried request with a known Idempotency-Key gets the first attempt's answer — if it is the same
    // request (same fingerprint, the rule the replicas decide by); another request under the key is refused.
    // Still in this node's outbox: the same 202 and id.
    if (idem !== undefined && deps.outbox !== undefined) {
      const waiting = deps.outbox.pendingByIdem(key, idem);
      if (waiting !== undefined) {
        if (waiting.fp !== fp) {
          done('idempotency_key_reused');
          throw keyReused(idem, waiting.id);
        }
        done('buffered');
        return answerBuffered(reply, waiting, true);
      }
    }
    if (idem !== undefined) {
      const prior = deps.store.idemLookup(key, idem);
      if (prior !== undefined) {
        if (prior.fp !== null && prior.fp !== fp) {
          done('idempotency_key_reused');
          throw keyReused(idem, prior.version);
        }
        const pos = parseVersion(prior.version);
        const first = pos === undefined ? undefined : deps.store.finalOutcome(pos.partition, pos.offset);
        if (first !== undefined) return answerOutcome(reply, deps, key, first, token, op, undefined, done);
      }
    }
    if (!deps.writer) {
      throw new LagoonError('not_a_writer', 'This node runs --role replica and takes no writes', {
        status: 503,
      });
    }
    const record = encodeRecord(body);
    if (op === 'put' && record.length > deps.config.maxValueBytes + 4096) {
      throw new LagoonError('value_too_large', `The value exceeds ${deps.config.maxValueBytes} bytes`, {
        status: 413,
      });
    }
    const toOutbox = (failed?: unknown) => {
      let entry: ReturnType<typeof buffer>;
      try {
        entry = buffer(deps, { id: outboxId!, key, partition, op, record, idem: recordIdem!, fp: fp! });
      } catch (e) {
        // A full outbox is a definite refusal only if nothing left the node: after an unknown outcome the write
        // may be in the log, and the client must hear that (504, retry with the same Idempotency-Key).
        const unknown = failed instanceof LagoonError && !failed.definite;
        done(((unknown ? failed : e) as LagoonError).code ?? 'error');
        throw unknown ? failed : e;
      }
      done('buffered');
      return answerBuffered(reply, entry, false);
    };
    // Per-key order on this node: a write never overtakes the key's buffered writes. A buffered one queues
    // behind them; a strict one waits (bounded) for them to reach the log, or is refused when Kafka is down.
    if (deps.outbox?.hasPending(key)) {
      if (mode === 'buffered') return toOutbox();
      const closed = () => deps.writeGate?.(partition) !== undefined;
      if (!closed() && !(await deps.outbox.waitKeyClear(key, writeTimeout, closed)) && !closed()) {
        done('buffered_writes_pending');
        throw new LagoonError(
          'buffered_writes_pending',
          'Earlier buffered writes to this key are still on their way to the log; the write was not applied.',
          { status: 503, retryable: true, definite: true },
        );
      }
    }
    let ack: Awaited<ReturnType<NonNullable<ApiDeps['writer']>['append']>>;
    try {
      // The wait for the key's buffered writes counts against the write's deadline.
      ack = await deps.writer.append(
        encodeKey(key),
        record,
        partition,
        Math.max(1, writeDeadline - Date.now()),
      );
    } catch (e) {
      // Buffered: Kafka refused it (nothing left the node) or its outcome is unknown (it may be in the log: the
      // outbox resends the same record, and the replicas take a second copy for a duplicate).
      if (mode === 'buffered' && shouldBuffer(e)) return toOutbox(e);
      done((e as LagoonError).code ?? 'error');
      throw e;
    }
    // Appended after its deadline by the broker's clock (a skewed node clock, or a last attempt that just made
    // it): every replica drops it, so this is a definite failure.
    if (body.dl !== undefined && ack.timestamp > body.dl) {
      done('write_deadline_passed');
      throw deadlinePassed(body.dl, ack.timestamp);
    }
    const version = formatVersion(ack.partition, ack.offset);
    if (!conditional && idem === undefined) {
      done('ok');
      return answerApplied(reply, deps, key, version, token, op, 'acknowledged');
    }
    // A conditional write is decided by the replicas in log order, and so is an idempotent one (its record may
    // be a retry of an earlier one, or reuse its key for another request): wait (bounded) for our own verdict.
    // Our record may be decided a duplicate (a retry, or a second copy appended by a producer retry): then the
    // answer is the original's outcome and version — the original is earlier in the same partition, so applied.
    const waitMs = q.timeoutMs ?? deps.config.readTimeoutMs;
    const reached = await deps.watch.waitFor(new Map([[ack.partition, ack.offset + 1]]), waitMs, true);
    const outcome = reached ? deps.store.finalOutcome(ack.partition, ack.offset) : undefined;
    if (!outcome) {
      done('pending');
      reply.header(
        'Lagoon-Session',
        encodeSession(deps.sessionTag, mergeSession(token, new Map([[ack.partition, ack.offset + 1]]))),
      );
      reply.header('Location', `/v1/writes/${version}`);
      return reply.code(202).send({
        key,
        version,
        partition: ack.partition,
        offset: ack.offset,
        status: 'pending',
        href: `/v1/writes/${version}`,
      });
    }
    return answerOutcome(reply, deps, key, outcome, token, op, ack, done);
  };

  app.put('/v1/kv/:key', write('put'));
  app.delete('/v1/kv/:key', write('del'));

  app.get('/v1/writes/:version', async (req) => {
    const raw = (req.params as { version: string }).version;
    parseWith(NoQuery, req.query);
    if (isOutboxId(raw)) return writeStatusById(deps, raw);
    const pos = parseVersion(raw);
    if (!pos || pos.partition >= P)
      throw badRequest(
        'invalid_version',
        `Not a version ("partition-offset") or a buffered write id ("ob-…") of this store: ${raw}`,
      );
    const outcome = deps.store.writeOutcome(pos.partition, pos.offset);
    if (outcome) return { version: raw, status: outcome.status, key: outcome.key, reason: outcome.reason };
    if (deps.watch.applied(pos.partition) > pos.offset)
      return { version: raw, status: 'unknown', key: null, reason: 'no write at this position' };
    return { version: raw, status: 'pending', key: null, reason: null };
  });
}

/** 503, definite: the record reached the log after the deadline it carries, so no replica applies it. */
function deadlinePassed(dl: number | undefined, appendedAt: number | undefined): LagoonError {
  const late = dl !== undefined && appendedAt !== undefined ? ` (${appendedAt - dl} ms late)` : '';
  return new LagoonError(
    'write_deadline_passed',
    `Kafka appended the write after its deadline${late}; every replica drops it, so it was not applied. Retry.`,
    { status: 503, retryable: true, definite: true },
  );
}

/** 422 (IETF Idempotency-Key draft): the key names another request; `version` is that request's write. */
function keyReused(idem: string | undefined, version: string): LagoonError {
  return new LagoonError(
    'idempotency_key_reused',
    `Idempotency-Key ${idem === undefined ? '' : `${JSON.stringify(idem)} `}was used for a different request (method, key, body, conditions or ttl differ); nothing was changed`,
    { status: 422, details: { version } },
  );
}

/**
 * Answers a write with the outcome that decides it: applied (200, the original's version as ETag), rejected by
 * a condition (412), or refused as a reused idempotency key (422). `own` is this request's own record, when it
 * wrote one; the answer is a replay when the outcome belongs to an earlier record.
 */
function answerOutcome(
  reply: FastifyReply,
  deps: ApiDeps,
  key: string,
  outcome: WriteOutcome & { version: string },
  token: Map<number, number>,
  op: 'put' | 'del',
  own: { partition: number; offset: number } | undefined,
  done: (result: string) => void,
) {
  if (own === undefined || outcome.offset !== own.offset || outcome.partition !== own.partition) {
    reply.header('Idempotent-Replayed', 'true');
  }
  const seen = own === undefined ? token : mergeSession(token, new Map([[own.partition, own.offset + 1]]));
  if (outcome.status === 'applied') {
    done('ok');
    return answerApplied(reply, deps, key, outcome.version, seen, op, 'applied');
  }
  reply.header(
    'Lagoon-Session',
    encodeSession(deps.sessionTag, mergeSession(seen, new Map([[outcome.partition, outcome.offset + 1]]))),
  );
  if (outcome.reason === 'idempotency_key_reused') {
    done('idempotency_key_reused');
    throw keyReused(undefined, outcome.version);
  }
  if (outcome.reason === 'deadline_passed') {
    done('write_deadline_passed');
    throw deadlinePassed(undefined, undefined);
  }
  done('precondition_failed');
  throw new LagoonError('precondition_failed', `Condition not met: ${outcome.reason ?? 'rejected'}`, {
    status: 412,
    details: { reason: outcome.reason, version: outcome.version },
  });
}

function answerApplied(
  reply: FastifyReply,
  deps: ApiDeps,
  key: string,
  version: string,
  token: Map<number, number>,
  op: 'put' | 'del',
  status: 'acknowledged' | 'applied',
) {
  const pos = parseVersion(version)!;
  reply.header('ETag', etagOf(version));
  reply.header(
    'Lagoon-Session',
    encodeSession(deps.sessionTag, mergeSession(token, new Map([[pos.partition, pos.offset + 1]]))),
  );
  return reply.send({
    key,
    version,
    partition: pos.partition,
    offset: pos.offset,
    status,
    ...(op === 'del' ? { deleted: true } : {}),
  });
}
