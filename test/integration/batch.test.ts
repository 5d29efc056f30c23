import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/partitioner.js';
import { digestsAgree, http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * Atomic batches (POST /v1/batch) on the real cluster: one Kafka transaction per batch, replicas reading
 * committed and applying a batch only once every part of it is in hand. Readers scan every replica the whole
 * time and must never see part of a batch. Waits are liveness bounds (minutes), not speed claims.
 */

const P = 6;
let nodes: [NodeProc, NodeProc, NodeProc];
let topic: string;
let stopAll: () => Promise<void>;

beforeAll(async () => {
  const started = await startNodes(3, { partitions: P });
  nodes = started.nodes as [NodeProc, NodeProc, NodeProc];
  topic = started.topic;
  stopAll = started.stopAll;
});
afterAll(async () => {
  await stopAll?.();
});

/** `n` keys under `prefix` covering every partition (at least one per partition). */
function keysOnEveryPartition(prefix: string, n: number): string[] {
  const keys: string[] = [];
  const covered = new Set<number>();
  for (let i = 0; keys.length < n || covered.size < P; i++) {
    const k = `${prefix}/${i}`;
    const p = partitionOf(k, P);
    if (keys.length < n || !covered.has(p)) {
      keys.push(k);
      covered.add(p);
    }
  }
  return keys;
}

const batch = (n: NodeProc, ops: unknown[], query = 'timeoutMs=60000') =>
  http('POST', `${n.url}/v1/batch?${query}`, { body: { ops }, timeoutMs: 120_000 });

/** Every value under `prefix` on one node, one scan (one SQLite read: a consistent view of that replica). */
async function scan(n: NodeProc, prefix: string): Promise<Map<string, unknown>> {
  const r = await http('GET', `${n.url}/v1/kv?prefix=${encodeURIComponent(prefix)}&limit=1000`);
  expect(r.status).toBe(200);
  return new Map((r.body.items as Array<{ key: string; value: unknown }>).map((i) => [i.key, i.value]));
}

/**
 * Scans every node in a loop until stopped; records every view in which the keys do not all hold one value
 * (or are all absent): a batch seen in part.
 */
function watchAtomicity(prefix: string, keys: string[]) {
  let running = true;
  const torn: string[] = [];
  let views = 0;
  const loops = nodes.map(async (n) => {
    while (running) {
      const seen = await scan(n, prefix).catch(() => undefined);
      if (seen === undefined) continue;
      views++;
      const values = new Set(keys.map((k) => JSON.stringify(seen.get(k) ?? null)));
      if (values.size > 1) torn.push(`${n.id}: ${[...values].join(' ')}`);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { torn, views };
    },
  };
}

async function waitConverged(): Promise<void> {
  const until = Date.now() + 180_000;
  while (!(await digestsAgree(nodes))) {
    if (Date.now() > until) throw new Error('replicas did not converge in 3 minutes');
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('POST /v1/batch', () => {
  it('concurrent batches over every partition from three nodes: no replica ever shows one in part', async () => {
    const prefix = 'batch/atomic';
    const keys = keysOnEveryPartition(prefix, 12);
    const watch = watchAtomicity(prefix, keys);
    const answers: Array<{ status: number; tag: string; code?: string }> = [];
    // Three writers, one per node, each overwriting every key with its own tag: their transactions interleave
    // on the same partitions, so some cross in opposite orders (wait-for cycles) and are rejected whole.
    await Promise.all(
      nodes.map(async (n, w) => {
        for (let i = 0; i < 15; i++) {
          const tag = `w${w}-${i}`;
          const r = await batch(
            n,
            keys.map((key) => ({ op: 'put', key, value: tag })),
          );
          answers.push({ status: r.status, tag, code: r.body.code });
        }
      }),
    );
    await waitConverged();
    const { torn, views } = await watch.stop();
    expect(views).toBeGreaterThan(30);
    expect(torn).toEqual([]);
    for (const a of answers) expect([200, 409], JSON.stringify(a)).toContain(a.status);
    expect(answers.filter((a) => a.status === 409).every((a) => a.code === 'batch_conflict')).toBe(true);
    const applied = new Set(answers.filter((a) => a.status === 200).map((a) => a.tag));
    expect(applied.size).toBeGreaterThan(0);
    console.info(
      `batches: ${applied.size} applied, ${answers.length - applied.size} rejected (batch_conflict); ${views} consistent views`,
    );
    // Every replica ends with every key at one value, that of a batch answered 200.
    for (const n of nodes) {
      const seen = await scan(n, prefix);
      const values = new Set(keys.map((k) => seen.get(k)));
      expect(values.size).toBe(1);
      expect(applied.has(String([...values][0]))).toBe(true);
    }
    // A batch answered 409 is rejected on every replica, and one answered 200 applied on every replica.
    const ids = await Promise.all(
      nodes.map(async (n) => (await http('GET', `${n.url}/v1/digest`)).body.partitions),
    );
    expect(new Set(ids.map((d) => JSON.stringify(d))).size).toBe(1);
  });

  it('answers with a version per op that works as If-Match, and a session token that reads the batch anywhere', async () => {
    const keys = keysOnEveryPartition('batch/versions', 6);
    const r = await batch(
      nodes[0],
      keys.map((key, i) => ({ op: 'put', key, value: { i } })),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.status).toBe('applied');
    expect(r.body.ops.map((o: { key: string }) => o.key)).toEqual(keys);
    const session = r.headers.get('lagoon-session')!;
    for (const n of nodes) {
      for (const [i, key] of keys.entries()) {
        const got = await http('GET', kvUrl(n, key, 'consistency=session&timeoutMs=60000'), {
          headers: { 'Lagoon-Session': session },
        });
        expect(got.status).toBe(200);
        expect(got.body.value).toEqual({ i });
        expect(got.body.version).toBe(r.body.ops[i].version);
      }
    }
    // The versions it returned are the keys' versions: If-Match with them succeeds, once.
    const again = await batch(nodes[1], [
      { op: 'put', key: keys[0], value: 'next', ifMatch: r.body.ops[0].version },
      { op: 'delete', key: keys[1], ifMatch: `"${r.body.ops[1].version}"` },
    ]);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const stale = await batch(nodes[2], [
      { op: 'put', key: keys[0], value: 'stale', ifMatch: r.body.ops[0].version },
    ]);
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ code: 'precondition_failed', reason: 'version_mismatch', op: 0 });
  });

  it('one failing condition applies nothing anywhere, and every replica gives the same verdict', async () => {
    const keys = keysOnEveryPartition('batch/cond', 6);
    expect((await http('PUT', kvUrl(nodes[0], keys[3]!), { body: 'exists' })).status).toBe(200);
    const r = await batch(
      nodes[1],
      keys.map((key, i) =>
        i === 3 ? { op: 'put', key, value: 'new', ifNoneMatch: '*' } : { op: 'put', key, value: 'new' },
      ),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(412);
    expect(r.body).toMatchObject({
      code: 'precondition_failed',
      reason: 'already_exists',
      op: 3,
      key: keys[3],
    });
    for (const n of nodes) {
      const verdict = await http('GET', `${n.url}/v1/batches/${encodeURIComponent(r.body.batch)}`);
      // Another replica may not have decided it yet: wait for it, then it must be the same verdict.
      let v = verdict.body;
      for (let i = 0; v.status === 'pending' && i < 600; i++) {
        await new Promise((res) => setTimeout(res, 100));
        v = (await http('GET', `${n.url}/v1/batches/${encodeURIComponent(r.body.batch)}`)).body;
      }
      expect(v).toEqual({ batch: r.body.batch, status: 'rejected', reason: 'already_exists', op: 3 });
      for (const [i, key] of keys.entries()) {
        const got = await http('GET', kvUrl(n, key, 'consistency=strong&timeoutMs=60000'));
        if (i === 3) expect(got.body.value).toBe('exists');
        else expect(got.status).toBe(404);
      }
    }
  });

  it('bad batches are 400 problems that change nothing', async () => {
    const bad: Array<[unknown, string]> = [
      [{}, 'invalid_batch'],
      [{ ops: [] }, 'invalid_batch'],
      [{ ops: [{ op: 'put', key: 'x' }] }, 'invalid_batch'],
      [{ ops: [{ op: 'delete', key: 'x', value: 1 }] }, 'invalid_batch'],
      [{ ops: [{ op: 'merge', key: 'x', value: 1 }] }, 'invalid_batch'],
      [{ ops: [{ op: 'put', key: 'x', value: 1, extra: true }] }, 'invalid_batch'],
      [
        {
          ops: [
            { op: 'put', key: 'batch/dup', value: 1 },
            { op: 'delete', key: 'batch/dup' },
          ],
        },
        'batch_duplicate_key',
      ],
      [{ ops: [{ op: 'put', key: 'a\u0001b', value: 1 }] }, 'invalid_key'],
      [{ ops: [{ op: 'put', key: 'x', value: 1, ifMatch: 'nope' }] }, 'invalid_if_match'],
      [
        { ops: [{ op: 'put', key: 'x', value: 1, ifMatch: '*', ifNoneMatch: '*' }] },
        'conflicting_conditions',
      ],
      [
        { ops: Array.from({ length: 1001 }, (_, i) => ({ op: 'put', key: `batch/many/${i}`, value: i })) },
        'batch_too_large',
      ],
    ];
    for (const [body, code] of bad) {
      const r = await http('POST', `${nodes[0].url}/v1/batch`, { body });
      expect(r.status, JSON.stringify(body).slice(0, 200)).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.code).toBe(code);
    }
    const mode = await http('POST', `${nodes[0].url}/v1/batch`, {
      body: { ops: [{ op: 'put', key: 'batch/mode', value: 1 }] },
      headers: { 'Lagoon-Write-Mode': 'buffered' },
    });
    expect(mode.status).toBe(400);
    expect(mode.body.code).toBe('invalid_write_mode');
    const text = await fetch(`${nodes[0].url}/v1/batch`, {
      method: 'POST',
      body: '{"ops":[',
      headers: { 'content-type': 'application/json' },
    });
    expect(text.status).toBe(400);
    // JSON only: a text/plain body is 415 (never stored as a string), for a batch and for a single PUT.
    for (const [method, url] of [
      ['POST', `${nodes[0].url}/v1/batch`],
      ['PUT', kvUrl(nodes[0], 'batch/plain')],
    ] as const) {
      const plain = await fetch(url, { method, body: 'hello', headers: { 'content-type': 'text/plain' } });
      expect(plain.status).toBe(415);
      expect(plain.headers.get('content-type')).toContain('application/problem+json');
      expect(((await plain.json()) as { code: string }).code).toBe('unsupported_media_type');
    }
    for (const k of ['x', 'batch/dup', 'batch/mode', 'batch/many/0', 'batch/plain']) {
      expect((await http('GET', kvUrl(nodes[1], k, 'consistency=strong&timeoutMs=60000'))).status).toBe(404);
    }
  });

  it('a node SIGKILLed between appending a batch and committing it: the batch never shows, the log moves on', async () => {
    const [dying] = (
      await startNodes(1, { topic, partitions: P, env: { LAGOON_TEST_BREAK: 'batch-dies-before-commit' } })
    ).nodes as [NodeProc];
    const keys = keysOnEveryPartition('batch/killed', 6);
    const watch = watchAtomicity('batch/killed', keys);
    // The node appends every part, then kills itself before the commit: the request gets no answer.
    const attempt = await batch(
      dying,
      keys.map((key) => ({ op: 'put', key, value: 'uncommitted' })),
    ).catch((e: Error) => e);
    expect(attempt).toBeInstanceOf(Error);
    await new Promise((r) =>
      dying.child.exitCode !== null || dying.child.signalCode !== null
        ? r(null)
        : dying.child.once('exit', r),
    );
    expect(dying.child.signalCode).toBe('SIGKILL');
    // Its open transaction holds the read-committed end of every partition until the coordinator aborts it
    // (the producer's 10 s transaction timeout). A write made now becomes readable once it is aborted.
    const after = await http('PUT', kvUrl(nodes[0], 'batch/killed-after'), { body: 'later' });
    expect(after.status).toBe(200);
    for (const n of nodes) {
      let got = await http('GET', kvUrl(n, 'batch/killed-after', 'consistency=strong&timeoutMs=60000'), {
        timeoutMs: 90_000,
      });
      // One more minute if the first one ran out: a liveness bound on a shared machine.
      if (got.status === 504) {
        got = await http('GET', kvUrl(n, 'batch/killed-after', 'consistency=strong&timeoutMs=60000'), {
          timeoutMs: 90_000,
        });
      }
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      expect(got.body.value).toBe('later');
    }
    await waitConverged();
    const { torn } = await watch.stop();
    expect(torn).toEqual([]);
    for (const n of nodes) {
      const seen = await scan(n, 'batch/killed/');
      expect(seen.size, `${n.id} shows keys of an uncommitted batch`).toBe(0);
    }
  });
});
