import { decodeSession, encodeSession, mergeSession } from '../core/session.js';
import { LagoonError } from '../errors.js';
import type { ApiDeps } from './deps.js';
import { badRequest } from './problem.js';
import type { Consistency } from './schemas.js';

export interface ReadParams {
  consistency: Consistency;
  maxStaleMs?: number | undefined;
  maxLag?: number | undefined;
  timeoutMs?: number | undefined;
}

/** Decodes the client's Lagoon-Session header (absent → empty session). */
export function sessionFrom(deps: ApiDeps, header: string | string[] | undefined): Map<number, number> {
  if (header === undefined || header === '') return new Map();
  if (Array.isArray(header)) throw badRequest('invalid_session', 'Send one Lagoon-Session header');
  const r = decodeSession(header, { tag: deps.sessionTag, partitions: deps.config.partitions });
  if (!r.ok) throw badRequest('invalid_session', `Lagoon-Session token rejected: ${r.reason}`);
  return r.offsets;
}

/**
 * The token to hand back: what the client had, plus what it has now seen on `partitions`.
 * Must be called *after* the read: the store's applied offsets are read afresh (not from a cache),
 * so the token is never below the state just served, and monotonic reads hold on every node even
 * when the replica runs in another process.
 */
export function sessionAfterRead(deps: ApiDeps, token: Map<number, number>, partitions: number[]): string {
  // Only the partitions read, one row each: on an eventual key read, reading every partition's row was twice
  // the cost of reading the key itself (CPU profile of a node under GET load).
  const seen = new Map<number, number>();
  for (const p of partitions) seen.set(p, deps.store.appliedOffset(p));
  return sessionWith(deps, token, seen);
}

/** The token to hand back when the read itself returned the applied offsets it was served at (a key read). */
export function sessionWith(
  deps: ApiDeps,
  token: ReadonlyMap<number, number>,
  seen: ReadonlyMap<number, number>,
): string {
  // A partition with nothing applied yet adds nothing to the token.
  return encodeSession(deps.sessionTag, mergeSession(token, new Map([...seen].filter(([, o]) => o > 0))));
}

/**
 * Holds a read until this replica may serve it at the requested level, or throws:
 * session → 504 when the replica has not reached the token's offsets in time;
 * bounded → 503 when lag/staleness stays above the bound;
 * strong → 503 at once when Kafka is unreachable, 504 when the replica does not catch up in time.
 * Only `partitions` are waited for (one, for a key read).
 */
export function admitRead(
  deps: ApiDeps,
  params: ReadParams,
  partitions: number[],
  token: Map<number, number>,
): Promise<void> | undefined {
  // A replica installing a snapshot, or one with records of these partitions deleted before it applied them (a
  // GAP), holds a partial store: nothing of it is served, at any level, eventual included.
  const refusal = deps.servingRefusal?.(partitions);
  if (refusal !== undefined) throw refusal;
  const timeoutMs = params.timeoutMs ?? deps.config.readTimeoutMs;
  // A replica that refused its log (another topic or cluster, or a log that ends below its offsets) still
  // holds old data: never served as current. Eventual reads may see it; they promise nothing more.
  const problem = deps.replicaStatus().problem;
  if (problem !== undefined && params.consistency !== 'eventual') {
    throw new LagoonError('replica_diverged', problem.message, {
      status: 503,
      retryable: false,
      details: { reason: problem.code },
    });
  }
  // Eventual reads are admitted synchronously (undefined, nothing to await): most reads skip a promise.
  if (params.consistency === 'eventual') return undefined;
  return admitAfterWait(deps, params, partitions, token, timeoutMs);
}

async function admitAfterWait(
  deps: ApiDeps,
  params: ReadParams,
  partitions: number[],
  token: Map<number, number>,
  timeoutMs: number,
): Promise<void> {
  switch (params.consistency) {
    case 'session': {
      if (deps.config.testBreaks.includes('session-ignores-token')) return;
      const targets = new Map<number, number>();
      for (const p of partitions) {
        const o = token.get(p);
        if (o !== undefined) targets.set(p, o);
      }
      if (await deps.watch.waitFor(targets, timeoutMs)) return;
      throw new LagoonError(
        'session_timeout',
        `This replica has not yet applied the writes your session has seen (waited ${timeoutMs} ms). ` +
          'Retry, raise timeoutMs, or read from another node.',
        { status: 504, retryable: true },
      );
    }
    case 'bounded': {
      if (params.maxStaleMs === undefined && params.maxLag === undefined) {
        throw badRequest('missing_bound', 'consistency=bounded needs maxStaleMs and/or maxLag');
      }
      // maxLag is judged against an end offset read lately (freshEndAgeMs), never an old one: a node cut
      // off from Kafka does not know how far behind it is, so it does not serve maxLag reads.
      const ok = () =>
        partitions.every(
          (p) =>
            (params.maxLag === undefined ||
              deps.freshness.lagRecordsBound(p, Date.now(), freshEndAgeMs(deps)) <= params.maxLag) &&
            (params.maxStaleMs === undefined ||
              deps.freshness.stalenessMs(p, Date.now()) <= params.maxStaleMs),
        );
      const deadline = Date.now() + timeoutMs;
      while (!ok()) {
        if (Date.now() >= deadline) {
          throw new LagoonError(
            'too_stale',
            'This replica is further behind than the requested bound; retry later or read elsewhere.',
            { status: 503, retryable: true },
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      return;
    }
    case 'strong': {
      if (!deps.monitor.reachable()) {
        throw new LagoonError(
          'kafka_unavailable',
          'Strong reads need Kafka to learn the latest offset, and no broker is reachable. ' +
            'consistency=eventual still answers.',
          { status: 503, retryable: true },
        );
      }
      if (deps.config.testBreaks.includes('strong-skips-offset-wait')) return;
      const started = Date.now();
      const ends = await deps.monitor.freshEndOffsets(timeoutMs, partitions);
      const targets = new Map<number, number>();
      for (const p of partitions) targets.set(p, ends.get(p)?.endOffset ?? 0);
      if (await deps.watch.waitFor(targets, Math.max(0, timeoutMs - (Date.now() - started)))) return;
      throw new LagoonError(
        'strong_timeout',
        `This replica did not reach the partition's latest offset within ${timeoutMs} ms.`,
        { status: 504, retryable: true },
      );
    }
  }
}

/** How old an end offset may be and still bound a replica's record lag (a few refresh intervals). */
export function freshEndAgeMs(deps: ApiDeps): number {
  return Math.max(1500, 3 * deps.config.offsetRefreshMs);
}
