import { describe, expect, it } from 'vitest';
import { LagoonClient, type LagoonClientOptions, LagoonError } from '../../../src/client/index.js';
import {
  type FakeAnswer,
  type FakeRequest,
  fakeFetch,
  item,
  json,
  problem,
  readHeaders,
  token,
  written,
} from './fake-nodes.js';

/**
 * The client's behaviour against fake nodes (a `fetch` that answers like nodes, or fails like a network):
 * what it retries, where, with which Idempotency-Key, what it never resends, and how it carries the session.
 */

const A = 'http://a.test';
const B = 'http://b.test';
const C = 'http://c.test';

function client(
  handler: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>,
  opts: Partial<LagoonClientOptions> = {},
) {
  const f = fakeFetch(handler);
  const c = new LagoonClient({
    nodes: [A, B, C],
    fetch: f.fetch,
    backoff: { baseMs: 1, maxMs: 5 },
    ...opts,
  });
  return { c, calls: f.calls };
}

async function caught(p: Promise<unknown>): Promise<LagoonError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LagoonError);
    return e as LagoonError;
  }
  throw new Error('expected the call to fail');
}

describe('reads', () => {
  it('surfaces the item and where it came from', async () => {
    const { c } = client(() =>
      json(200, item('k', { n: 1 }, '2-7'), readHeaders('n1', { 'lagoon-lag-records': 'unknown' })),
    );
    const r = await c.get<{ n: number }>('k');
    expect(r).toMatchObject({
      found: true,
      key: 'k',
      value: { n: 1 },
      version: '2-7',
      servedBy: 'n1',
      nodeUrl: A,
      lagRecords: null,
      stalenessMs: 0,
      consistency: 'eventual',
      attempts: 1,
    });
  });

  it('answers a missing key as found: false, with the read headers', async () => {
    const { c } = client(() => problem(404, 'not_found', { headers: readHeaders('n2') }));
    const r = await c.get('nope', { consistency: 'strong' });
    expect(r).toMatchObject({ found: false, key: 'nope', value: undefined, version: null, servedBy: 'n2' });
  });

  it('sends only the query fields the route has, with the key encoded', async () => {
    const { c, calls } = client(() => json(200, item('a/b c', 1), readHeaders('n1')));
    await c.get('a/b c', { consistency: 'bounded', maxStaleMs: 500, timeoutMs: 2000 });
    expect(calls[0]!.path).toBe('/v1/kv/a%2Fb%20c');
    expect(Object.fromEntries(calls[0]!.query)).toEqual({
      consistency: 'bounded',
      maxStaleMs: '500',
      timeoutMs: '2000',
    });
  });

  it('refuses an answer that lacks the fields of its schema', async () => {
    const { c } = client(() => json(200, { key: 'k' }, readHeaders('n1')));
    const e = await caught(c.get('k'));
    expect(e.code).toBe('invalid_response');
  });

  it('moves to another node when one refuses connections or is not ready, at once', async () => {
    const { c, calls } = client((r) =>
      r.node === A
        ? 'refuse'
        : r.node === B
          ? problem(503, 'not_ready', { retryable: true, headers: { 'retry-after': '5' } })
          : json(200, item('k', 1), readHeaders('n3')),
    );
    const started = Date.now();
    const r = await c.get('k');
    expect(r.servedBy).toBe('n3');
    expect(r.attempts).toBe(3);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(calls.map((x) => x.node)).toEqual([A, B, C]);
    // Sticky: the next call starts on the node that answered, and skips the ones that failed.
    await c.get('k');
    expect(calls.at(-1)!.node).toBe(C);
  });

  it('pages a scan with its cursor', async () => {
    const pages: Record<string, unknown> = {
      '': { items: [item('a', 1), item('b', 2)], nextCursor: 'Yg' },
      Yg: { items: [item('c', 3)], nextCursor: null },
    };
    const { c, calls } = client((r) => json(200, pages[r.query.get('cursor') ?? ''], readHeaders('n1')));
    const keys: string[] = [];
    for await (const page of c.scan({ prefix: '', limit: 2 })) keys.push(...page.items.map((i) => i.key));
    expect(keys).toEqual(['a', 'b', 'c']);
    expect(calls.map((x) => x.query.get('cursor'))).toEqual([null, 'Yg']);
  });
});

describe('node state', () => {
  it('keeps the body’s node id apart from the URL that answered', async () => {
    const status = {
      node: 'n7',
      role: 'all',
      topic: 't',
      replica: { state: 'running', group: 'g', lastError: null },
      partitions: [],
      brokers: { reachable: true, seen: [1], lastError: null },
      writeMode: 'strict',
      outboxDepth: 0,
      outbox: { records: 0, oldestSeconds: 0, max: 10 },
      bookkeepingRetentionMs: 1,
    };
    const { c, calls } = client((r) =>
      r.path === '/v1/status' ? json(200, status) : json(200, { node: 'n8' }),
    );
    expect(await c.status({ node: B })).toMatchObject({ node: 'n7', nodeUrl: B, servedBy: null });
    expect(await c.lag()).toMatchObject({ node: 'n8' });
    expect(calls.map((x) => x.path)).toEqual(['/v1/status', '/v1/lag']);
  });
});

describe('sessions', () => {
  it('merges the tokens of every node and sends them on session reads only', async () => {
    let n = 0;
    const { c, calls } = client((r) => {
      n++;
      if (r.method === 'PUT') {
        const t = r.node === A ? token({ 0: 10 }) : token({ 3: 4, 0: 2 });
        return json(200, written(r.path, r.node === A ? '0-9' : '3-3'), { 'lagoon-session': t });
      }
      return json(200, item('k', n), readHeaders('n1', { 'lagoon-session': token({ 0: 10, 3: 4 }) }));
    });
    await c.put('x', 1, { node: A });
    await c.put('y', 2, { node: B });
    expect(c.session()).toBe(token({ 0: 10, 3: 4 }));
    await c.get('k');
    expect(calls.at(-1)!.headers.get('lagoon-session')).toBeNull();
    await c.get('k', { consistency: 'session' });
    expect(calls.at(-1)!.headers.get('lagoon-session')).toBe(token({ 0: 10, 3: 4 }));
    // Writes do not send it (they need none); a resumed client sends what it was given.
    expect(calls.filter((x) => x.method === 'PUT').every((x) => !x.headers.has('lagoon-session'))).toBe(true);
    const again = client(() => json(200, item('k', 1), readHeaders('n1')), { session: c.session()! });
    await again.c.get('k', { consistency: 'session' });
    expect(again.calls[0]!.headers.get('lagoon-session')).toBe(token({ 0: 10, 3: 4 }));
  });

  it('keeps the session a failed answer carries (a 412 says where the winning write is)', async () => {
    const { c } = client(() =>
      problem(412, 'precondition_failed', {
        reason: 'version_mismatch',
        version: '1-5',
        headers: { 'lagoon-session': token({ 1: 6 }) },
      }),
    );
    await caught(c.put('k', 1, { ifMatch: '1-2' }));
    expect(c.session()).toBe(token({ 1: 6 }));
  });
});

describe('writes', () => {
  it('sends an Idempotency-Key, strict mode, and quoted If-Match', async () => {
    const { c, calls } = client(() => json(200, written('k', '0-3')));
    const r = await c.put('k', { v: 1 }, { ifMatch: '0-2', ttl: 60 });
    const h = calls[0]!.headers;
    expect(h.get('idempotency-key')).toBe(r.idempotencyKey);
    expect(r.idempotencyKey).toMatch(/^lc-[0-9a-f-]{36}$/);
    expect(h.get('lagoon-write-mode')).toBe('strict');
    expect(h.get('if-match')).toBe('"0-2"');
    expect(h.get('content-type')).toBe('application/json');
    expect(calls[0]!.body).toEqual({ v: 1 });
    expect(Object.fromEntries(calls[0]!.query)).toEqual({ ttl: '60' });
    await c.delete('k', { ifNoneMatch: true });
    expect(calls[1]!.method).toBe('DELETE');
    expect(calls[1]!.headers.get('if-none-match')).toBe('*');
    expect(calls[1]!.body).toBeUndefined();
  });

  it('retries an unknown outcome with the same key on another node: 504, a lost connection, a timeout', async () => {
    const answers: FakeAnswer[] = [
      problem(504, 'write_outcome_unknown', { retryable: true, definite: false }),
      'reset',
      'hang',
      json(200, written('k', '4-1'), { 'idempotent-replayed': 'true' }),
    ];
    const { c, calls } = client(() => answers.shift()!, { attemptTimeoutMs: 200 });
    const r = await c.put('k', 1);
    expect(r).toMatchObject({ version: '4-1', replayed: true, attempts: 4 });
    expect(new Set(calls.map((x) => x.headers.get('idempotency-key')))).toEqual(new Set([r.idempotencyKey]));
    expect(calls[0]!.node).not.toBe(calls[1]!.node);
  });

  it('never retries a definite failure that is not retryable', async () => {
    for (const answer of [
      () => problem(412, 'precondition_failed', { reason: 'version_mismatch', version: '0-9' }),
      () => problem(422, 'idempotency_key_reused', { version: '0-1' }),
      () => problem(400, 'invalid_key'),
    ]) {
      const { c, calls } = client(answer);
      const e = await caught(c.put('k', 1));
      expect(calls).toHaveLength(1);
      expect(e.definite).toBe(true);
      expect(e.retryable).toBe(false);
    }
    const { c } = client(() =>
      problem(412, 'precondition_failed', { reason: 'already_exists', version: '0-9' }),
    );
    const e = await caught(c.put('k', 1, { ifNoneMatch: true }));
    expect(e).toMatchObject({
      code: 'precondition_failed',
      status: 412,
      details: { reason: 'already_exists' },
    });
  });

  it('retries a retryable refusal only after its Retry-After', async () => {
    const answers: FakeAnswer[] = [
      problem(503, 'kafka_unavailable', { retryable: true, headers: { 'retry-after': '1' } }),
      json(200, written('k', '0-1')),
    ];
    const { c, calls } = client(() => answers.shift()!);
    await c.put('k', 1);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('gives up after maxAttempts with the last error, saying the outcome may have happened', async () => {
    const { c, calls } = client(() => 'reset', { maxAttempts: 4 });
    const e = await caught(c.put('k', 1));
    expect(calls).toHaveLength(4);
    expect(e).toMatchObject({ code: 'connection_failed', definite: false, retryable: true, attempts: 4 });
    const never = client(() => 'refuse', { maxAttempts: 3 });
    const e2 = await caught(never.c.put('k', 1));
    expect(e2).toMatchObject({ code: 'connection_failed', definite: true });
  });

  it('asks for the verdict of a write its node could not decide in time, following a duplicate', async () => {
    const { c, calls } = client((r) => {
      if (r.method === 'PUT') {
        return json(202, {
          key: 'k',
          version: '1-9',
          partition: 1,
          offset: 9,
          status: 'pending',
          href: '/v1/writes/1-9',
        });
      }
      if (r.path === '/v1/writes/1-9')
        return json(200, { version: '1-9', status: 'duplicate', reason: '1-4' });
      return json(200, { version: '1-4', status: 'applied', key: 'k', reason: null });
    });
    const r = await c.put('k', 1);
    expect(r).toMatchObject({ version: '1-4', partition: 1, offset: 4, status: 'applied', replayed: true });
    expect(calls.filter((x) => x.method === 'PUT')).toHaveLength(1);
  });

  it('throws the rejection a polled verdict reports, as the node would', async () => {
    const { c } = client((r) =>
      r.method === 'PUT'
        ? json(202, {
            key: 'k',
            version: '1-9',
            partition: 1,
            offset: 9,
            status: 'pending',
            href: '/v1/writes/1-9',
          })
        : json(200, { version: '1-9', status: 'rejected', key: 'k', reason: 'version_mismatch' }),
    );
    const e = await caught(c.put('k', 1, { ifMatch: '1-1' }));
    expect(e).toMatchObject({
      code: 'precondition_failed',
      status: 412,
      details: { reason: 'version_mismatch' },
    });
  });

  it('stops retrying when the caller aborts', async () => {
    const ctl = new AbortController();
    const { c } = client(() => 'hang', { attemptTimeoutMs: 60_000 });
    setTimeout(() => ctl.abort(), 50);
    const e = await caught(c.put('k', 1, { signal: ctl.signal }));
    expect(e).toMatchObject({ code: 'aborted', definite: false });
  });
});

describe('batches', () => {
  const ops = [
    { op: 'put' as const, key: 'a', value: 1 },
    { op: 'delete' as const, key: 'b' },
  ];
  const applied = (r: FakeRequest) =>
    json(200, {
      batch: 'n1.x.1',
      status: 'applied',
      ops: [
        { key: 'a', version: '0-1', partition: 0, offset: 1 },
        { key: 'b', version: '2-1', partition: 2, offset: 1 },
      ],
      node: r.node,
    });

  it('never resends a batch whose request may have arrived', async () => {
    const { c, calls } = client(() => 'reset');
    const e = await caught(c.batch(ops));
    expect(calls).toHaveLength(1);
    expect(e).toMatchObject({ code: 'connection_failed', definite: false });
    const timeout = client(() => 'hang', { attemptTimeoutMs: 100 });
    const e2 = await caught(timeout.c.batch(ops));
    expect(timeout.calls).toHaveLength(1);
    expect(e2).toMatchObject({ code: 'request_timeout', definite: false });
  });

  it('sends it elsewhere when the connection was never made, or the node is not ready', async () => {
    const { c, calls } = client((r) =>
      r.node === A ? 'refuse' : r.node === B ? problem(503, 'not_ready', { retryable: true }) : applied(r),
    );
    const r = await c.batch(ops);
    expect(r).toMatchObject({ status: 'applied', nodeUrl: C, attempts: 3 });
    expect(calls).toHaveLength(3);
  });

  it('resolves a 504 by asking for the verdict, never by resending', async () => {
    let polls = 0;
    const { c, calls } = client((r) => {
      if (r.method === 'POST') {
        return problem(504, 'write_outcome_unknown', {
          retryable: true,
          definite: false,
          batch: 'n1.x.7',
          href: '/v1/batches/n1.x.7',
        });
      }
      if (r.path === '/v1/kv') return json(200, { items: [], nextCursor: null }, readHeaders('n1'));
      polls++;
      return json(200, {
        batch: 'n1.x.7',
        status: polls < 3 ? 'pending' : 'applied',
        reason: null,
        op: null,
      });
    });
    const r = await c.batch(ops);
    expect(r).toMatchObject({ batch: 'n1.x.7', status: 'applied' });
    expect(r.ops).toBeUndefined();
    expect(calls.filter((x) => x.method === 'POST')).toHaveLength(1);
    expect(calls.filter((x) => x.path === '/v1/batches/n1.x.7')).toHaveLength(3);
  });

  it('says the outcome is unknown when no verdict comes', async () => {
    const { c, calls } = client(
      (r) =>
        r.method === 'POST'
          ? problem(504, 'write_outcome_unknown', { definite: false, batch: 'n1.x.8' })
          : json(200, { batch: 'n1.x.8', status: 'pending', reason: null, op: null }),
      { verdictTimeoutMs: 50 },
    );
    const e = await caught(c.batch(ops));
    expect(e).toMatchObject({ code: 'write_outcome_unknown', definite: false, details: { batch: 'n1.x.8' } });
    expect(calls.filter((x) => x.method === 'POST')).toHaveLength(1);
  });

  it('resends a batch that lost a conflict (nothing of it applied); a failed condition is final', async () => {
    const answers: FakeAnswer[] = [
      problem(409, 'batch_conflict', {
        retryable: true,
        batch: 'n1.x.2',
        reason: 'batch_conflict',
        op: null,
      }),
    ];
    const { c, calls } = client((r) => answers.shift() ?? applied(r));
    expect((await c.batch(ops)).status).toBe('applied');
    expect(calls).toHaveLength(2);
    const failed = client(() =>
      problem(412, 'precondition_failed', { batch: 'n1.x.3', reason: 'not_found', op: 1, key: 'b' }),
    );
    const e = await caught(failed.c.batch(ops));
    expect(e).toMatchObject({ code: 'precondition_failed', details: { op: 1, key: 'b' } });
    expect(failed.calls).toHaveLength(1);
  });
});

describe('update', () => {
  it('reads strong, writes with If-Match, and starts over on 412', async () => {
    let version = 1;
    let value = 10;
    let raced = false;
    const { c, calls } = client((r) => {
      if (r.method === 'GET') {
        expect(r.query.get('consistency')).toBe('strong');
        return json(200, item('n', value, `0-${version}`), readHeaders('n1'));
      }
      if (!raced) {
        // Another writer gets in between the first read and write.
        raced = true;
        version++;
        value = 100;
        return problem(412, 'precondition_failed', { reason: 'version_mismatch', version: `0-${version}` });
      }
      expect(r.headers.get('if-match')).toBe(`"0-${version}"`);
      value = r.body as number;
      version++;
      return json(200, written('n', `0-${version}`));
    });
    const seen: Array<number | undefined> = [];
    const r = await c.update<number>('n', (v) => {
      seen.push(v);
      return (v ?? 0) + 1;
    });
    expect(seen).toEqual([10, 100]);
    expect(r).toMatchObject({ value: 101, updateAttempts: 2, version: '0-3' });
    expect(calls.filter((x) => x.method === 'PUT').map((x) => x.headers.get('idempotency-key'))).toHaveLength(
      2,
    );
  });

  it('creates with If-None-Match when the key is absent, and gives up after maxAttempts', async () => {
    const { c, calls } = client((r) =>
      r.method === 'GET'
        ? problem(404, 'not_found', { headers: readHeaders('n1') })
        : problem(412, 'precondition_failed', { reason: 'already_exists', version: '0-1' }),
    );
    const e = await caught(c.update<number>('n', (v) => (v ?? 0) + 1, { maxAttempts: 3 }));
    expect(e).toMatchObject({ code: 'update_conflict', status: 412, retryable: true });
    expect(calls.filter((x) => x.method === 'PUT').every((x) => x.headers.get('if-none-match') === '*')).toBe(
      true,
    );
    expect(calls.filter((x) => x.method === 'PUT')).toHaveLength(3);
  });
});
