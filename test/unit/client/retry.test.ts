import { describe, expect, it } from 'vitest';
import { LagoonError } from '../../../src/client/errors.js';
import { backoffMs, decide, type Failure, parseRetryAfter } from '../../../src/client/retry.js';
import { classifyFetchError, NodePool } from '../../../src/client/transport.js';

const problem = (
  code: string,
  opts: { retryable?: boolean; definite?: boolean } = {},
  retryAfterMs?: number,
) =>
  ({
    type: 'problem',
    error: new LagoonError(code, code, { status: 503, ...opts }),
    retryAfterMs,
  }) as Failure;

describe('retry decisions', () => {
  it('repeats reads and idempotent writes after an unknown outcome, never a batch', () => {
    for (const kind of ['lost', 'timeout'] as const) {
      expect(decide('read', { type: 'transport', kind })).toMatchObject({ retry: true, nodeFault: true });
      expect(decide('write', { type: 'transport', kind })).toMatchObject({ retry: true, nodeFault: true });
      expect(decide('batch', { type: 'transport', kind })).toMatchObject({ retry: false });
    }
    const unknown = problem('write_outcome_unknown', { retryable: true, definite: false });
    expect(decide('write', unknown)).toMatchObject({ retry: true, nodeFault: false });
    expect(decide('batch', unknown)).toMatchObject({ retry: false });
  });

  it('repeats anything whose connection was never made, elsewhere and at once', () => {
    for (const kind of ['read', 'write', 'batch'] as const) {
      expect(decide(kind, { type: 'transport', kind: 'not_sent' })).toEqual({
        retry: true,
        nodeFault: true,
        minDelayMs: 0,
      });
    }
  });

  it('repeats a definite failure only when retryable, and not before Retry-After', () => {
    expect(decide('write', problem('precondition_failed'))).toMatchObject({ retry: false });
    expect(decide('batch', problem('invalid_batch'))).toMatchObject({ retry: false });
    expect(decide('write', problem('kafka_unavailable', { retryable: true }, 1000))).toEqual({
      retry: true,
      nodeFault: false,
      minDelayMs: 1000,
    });
    expect(decide('batch', problem('batch_conflict', { retryable: true }))).toMatchObject({ retry: true });
  });

  it('takes a node-local refusal as the node’s fault', () => {
    for (const code of ['not_ready', 'not_a_writer', 'shutting_down', 'replica_diverged']) {
      expect(decide('batch', problem(code, {}, 1000))).toEqual({
        retry: true,
        nodeFault: true,
        minDelayMs: 1000,
      });
    }
  });

  it('backs off exponentially, jittered, within bounds', () => {
    expect(backoffMs(1, 100, 5000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 5000, () => 1)).toBe(100);
    expect(backoffMs(4, 100, 5000, () => 0.5)).toBe(600);
    expect(backoffMs(30, 100, 5000, () => 1)).toBe(5000);
  });

  it('reads Retry-After in seconds or as a date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
  });
});

describe('fetch failures', () => {
  const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });
  it('are "not sent" only when the connection was never made', () => {
    expect(classifyFetchError(fetchFailed({ code: 'ECONNREFUSED' }))).toBe('not_sent');
    expect(
      classifyFetchError(
        fetchFailed(new AggregateError([{ code: 'ECONNREFUSED' }, { code: 'ECONNREFUSED' }])),
      ),
    ).toBe('not_sent');
    expect(classifyFetchError(fetchFailed({ code: 'ECONNRESET' }))).toBe('lost');
    expect(classifyFetchError(fetchFailed({ code: 'UND_ERR_SOCKET' }))).toBe('lost');
    expect(classifyFetchError(new TypeError('Failed to fetch'))).toBe('lost');
  });
});

describe('node pool', () => {
  it('sticky: stays on a node until it fails, skips down nodes until their cooldown ends', () => {
    let now = 0;
    const pool = new NodePool(['http://a/', 'http://b', 'http://c'], 'sticky', () => now);
    expect(pool.plan()(new Set())).toBe('http://a');
    pool.markDown('http://a', 1000);
    expect(pool.plan()(new Set())).toBe('http://b');
    pool.markDown('http://b', 1000);
    expect(pool.plan()(new Set())).toBe('http://c');
    pool.markDown('http://c', 500);
    // Every node down: the one that comes back soonest.
    expect(pool.plan()(new Set())).toBe('http://c');
    now = 1001;
    pool.markUp('http://b');
    expect(pool.plan()(new Set())).toBe('http://b');
  });

  it('round-robin: each call starts on the next node; a preferred node goes first', () => {
    const pool = new NodePool(['http://a', 'http://b', 'http://c'], 'round-robin');
    expect([1, 2, 3, 4].map(() => pool.plan()(new Set()))).toEqual([
      'http://a',
      'http://b',
      'http://c',
      'http://a',
    ]);
    const pick = pool.plan('http://c/');
    expect(pick(new Set())).toBe('http://c');
    expect(pick(new Set(['http://c']))).not.toBe('http://c');
  });
});
