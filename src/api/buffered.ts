import type { FastifyReply } from 'fastify';
import { decodeRecord, encodeKey } from '../core/record.js';
import { formatVersion, trimHeaderValue } from '../core/version.js';
import { LagoonError } from '../errors.js';
import type { Outbox, OutboxEntry } from '../outbox/outbox.js';
import type { ApiDeps } from './deps.js';
import { badRequest } from './problem.js';

/**
 * The buffered half of the write path (availability over consistency): parsing the write-mode and
 * read-buffered headers, putting a write in the node's outbox and answering 202, reading a key's latest
 * buffered value, and reporting where an outbox id stands.
 */

export type WriteMode = 'strict' | 'buffered';

/** A header value without the optional whitespace HTTP allows around it (spaces and tabs only, RFC 9110 §5.5). */
export function headerValue(raw: string | string[]): string {
  return trimHeaderValue(String(raw));
}

/** `Lagoon-Write-Mode`: strict | buffered; absent → the node's default; anything else → 400 invalid_write_mode. */
export function parseWriteMode(raw: string | string[] | undefined, fallback: WriteMode): WriteMode {
  if (raw === undefined) return fallback;
  const v = headerValue(raw).toLowerCase();
  if (v === 'strict' || v === 'buffered') return v;
  throw badRequest(
    'invalid_write_mode',
    `Lagoon-Write-Mode must be strict or buffered, not ${JSON.stringify(String(raw).slice(0, 64))}`,
  );
}

/** `Lagoon-Read-Buffered`: true | false; absent → false; anything else → 400 invalid_read_buffered. */
export function parseReadBuffered(raw: string | string[] | undefined): boolean {
  if (raw === undefined) return false;
  const v = headerValue(raw).toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw badRequest('invalid_read_buffered', 'Lagoon-Read-Buffered must be true or false');
}

/** Errors after which a buffered write goes to the outbox: Kafka could not take it, or its outcome is unknown. */
const BUFFERABLE = new Set(['kafka_unavailable', 'topic_unsafe', 'overloaded', 'write_outcome_unknown']);

/** True if a failed append of a buffered-mode write should be kept in the outbox rather than reported. */
export function shouldBuffer(e: unknown): boolean {
  return e instanceof LagoonError && BUFFERABLE.has(e.code);
}

/** The outbox of a node that takes writes; a `--role replica` node has none. */
export function outboxOf(deps: ApiDeps): Outbox {
  if (!deps.outbox) {
    throw new LagoonError('not_a_writer', 'This node runs --role replica and takes no writes', {
      status: 503,
    });
  }
  return deps.outbox;
}

/** Answers 202 for a buffered write (a new one, or a client's retry of one still waiting). */
export function answerBuffered(reply: FastifyReply, entry: OutboxEntry, replayed: boolean) {
  const href = `/v1/writes/${entry.id}`;
  reply.header('Location', href);
  if (replayed) reply.header('Idempotent-Replayed', 'true');
  return reply.code(202).send({
    status: 'buffered',
    id: entry.id,
    key: entry.key,
    partition: entry.partition,
    bufferedAt: entry.createdAt,
    href,
  });
}

/** Buffers a write durably (committed before this returns) and wakes the drainer; 503 outbox_full if full. */
export function buffer(deps: ApiDeps, e: Omit<OutboxEntry, 'seq' | 'createdAt'>): OutboxEntry {
  const entry = outboxOf(deps).add(e);
  deps.onBuffered?.();
  return entry;
}

/**
 * `Lagoon-Read-Buffered: true` on a key with entries waiting in this node's outbox: its latest buffered value
 * (a delete reads as 404), marked `Lagoon-Read-Source: outbox`. Returns undefined when nothing is buffered.
 */
export function bufferedRead(deps: ApiDeps, reply: FastifyReply, key: string) {
  const entry = deps.outbox?.latestFor(key);
  if (entry === undefined) return undefined;
  reply.header('Lagoon-Read-Source', 'outbox');
  reply.header('Lagoon-Outbox-Id', entry.id);
  const rec = decodeRecord(encodeKey(key), entry.record);
  if (rec.op !== 'put') {
    throw new LagoonError(
      'not_found',
      `Key ${JSON.stringify(key)} is deleted by a buffered write (${entry.id})`,
      {
        status: 404,
        details: { id: entry.id },
      },
    );
  }
  return reply
    .type('application/json')
    .send(
      `{"key":${JSON.stringify(key)},"value":${JSON.stringify(rec.value)},"version":null,"buffered":true,"id":${JSON.stringify(entry.id)},"bufferedAt":${entry.createdAt}}`,
    );
}

/**
 * GET /v1/writes/{id} for an outbox id: buffered (still waiting on this node), pending (in the log, not applied
 * by this node's replica yet), applied (with the version whose outcome it got) or rejected (with the reason).
 */
export function writeStatusById(deps: ApiDeps, id: string): Record<string, unknown> {
  const found = deps.outbox?.lookup(id);
  if (found === undefined) {
    throw new LagoonError(
      'unknown_write',
      `No buffered write ${id} on this node: an outbox id is known to the node that took the write (for the bookkeeping retention)`,
      { status: 404 },
    );
  }
  if (found.state === 'buffered') {
    const e = found.entry;
    return { id, status: 'buffered', key: e.key, version: null, reason: null, bufferedAt: e.createdAt };
  }
  const base = { id, key: found.key, bufferedAt: found.createdAt, sentAt: found.sentAt };
  const own = formatVersion(found.partition, found.offset);
  const outcome = deps.store.finalOutcome(found.partition, found.offset);
  if (outcome !== undefined) {
    // A resend the replicas took for a copy answers with the original's version (the one that counts).
    return {
      ...base,
      status: outcome.status,
      version: outcome.version,
      reason: outcome.status === 'rejected' ? outcome.reason : null,
    };
  }
  if (deps.watch.applied(found.partition) > found.offset) {
    return {
      ...base,
      status: 'unknown',
      version: own,
      reason: 'the verdict is older than the bookkeeping retention',
    };
  }
  return { ...base, status: 'pending', version: own, reason: null };
}
