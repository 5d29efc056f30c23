import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * Idempotency-Key through three nodes on the real cluster: a retry answers the original outcome and version
 * on every node however it races the original; the same key for another request is 422 and changes nothing.
 * Verdicts wait up to a minute (`timeoutMs`): a liveness bound, not a speed claim.
 */

let nodes: [NodeProc, NodeProc, NodeProc];
let stopAll: () => Promise<void>;

beforeAll(async () => {
  const started = await startNodes(3);
  nodes = started.nodes as [NodeProc, NodeProc, NodeProc];
  stopAll = started.stopAll;
});
afterAll(async () => {
  await stopAll?.();
});

const WAIT = 'timeoutMs=60000';
const strongGet = (n: NodeProc, key: string) => http('GET', kvUrl(n, key, `consistency=strong&${WAIT}`));

/** PUT with a raw (not re-serialised) body. */
async function putRaw(n: NodeProc, key: string, text: string) {
  const r = await fetch(kvUrl(n, key), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: text,
    signal: AbortSignal.timeout(60_000),
  });
  return { status: r.status, body: (await r.json()) as { code?: string; detail?: string } };
}

describe('Idempotency-Key across nodes', () => {
  it('concurrent identical conditional PUTs that fail all answer 412, retries too', async () => {
    const key = 'idem/fails';
    expect((await http('PUT', kvUrl(nodes[0], key), { body: 'exists' })).status).toBe(200);
    const send = (n: NodeProc) =>
      http('PUT', kvUrl(n, key, WAIT), {
        body: { attempt: 1 },
        headers: { 'If-None-Match': '*', 'Idempotency-Key': 'k-fails' },
        timeoutMs: 90_000,
      });
    const answers = await Promise.all([...nodes, ...nodes].map(send));
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.body)).toBe(412);
      expect(a.body).toMatchObject({ code: 'precondition_failed', reason: 'already_exists' });
    }
    // Every answer names the one record that decided it.
    expect(new Set(answers.map((a) => a.body.version)).size).toBe(1);
    // A later retry, on any node, answers the same.
    for (const n of nodes) {
      const again = await send(n);
      expect(again.status).toBe(412);
      expect(again.body.version).toBe(answers[0]!.body.version);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
    }
    expect((await strongGet(nodes[2], key)).body.value).toBe('exists');
  });

  it('concurrent identical conditional PUTs that hold all answer 200 with the same version', async () => {
    const key = 'idem/holds';
    const send = (n: NodeProc) =>
      http('PUT', kvUrl(n, key, WAIT), {
        body: { created: true },
        headers: { 'If-None-Match': '*', 'Idempotency-Key': 'k-holds' },
        timeoutMs: 90_000,
      });
    const answers = await Promise.all([...nodes, ...nodes].map(send));
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const versions = new Set(answers.map((a) => a.body.version));
    expect(versions.size).toBe(1);
    expect(new Set(answers.map((a) => a.headers.get('etag')))).toEqual(
      new Set([`"${answers[0]!.body.version}"`]),
    );
    const got = await strongGet(nodes[1], key);
    expect(got.body).toMatchObject({ value: { created: true }, version: answers[0]!.body.version });
    // The ETag every client got works as If-Match.
    const next = await http('PUT', kvUrl(nodes[2], key, WAIT), {
      body: 2,
      headers: { 'If-Match': answers[5]!.headers.get('etag')! },
    });
    expect(next.status).toBe(200);
  });

  it('a replay returns the original version; a reused key for another request is 422 and changes nothing', async () => {
    const key = 'idem/reuse';
    const first = await http('PUT', kvUrl(nodes[0], key), {
      body: { v: 1 },
      headers: { 'Idempotency-Key': 'k-reuse' },
    });
    expect(first.status).toBe(200);
    const version = first.body.version as string;
    // Replays, on every node, however far its replica is: the original version and ETag.
    for (const n of nodes) {
      const again = await http('PUT', kvUrl(n, key, WAIT), {
        body: { v: 1 },
        headers: { 'Idempotency-Key': 'k-reuse' },
      });
      expect(again.status).toBe(200);
      expect(again.body.version).toBe(version);
      expect(again.headers.get('etag')).toBe(`"${version}"`);
    }
    // Another body, another method, another condition: 422, on every node.
    const others = [
      (n: NodeProc) =>
        http('PUT', kvUrl(n, key, WAIT), { body: { v: 2 }, headers: { 'Idempotency-Key': 'k-reuse' } }),
      (n: NodeProc) => http('DELETE', kvUrl(n, key, WAIT), { headers: { 'Idempotency-Key': 'k-reuse' } }),
      (n: NodeProc) =>
        http('PUT', kvUrl(n, key, `ttl=60&${WAIT}`), {
          body: { v: 1 },
          headers: { 'Idempotency-Key': 'k-reuse' },
        }),
    ];
    for (const n of nodes) {
      for (const send of others) {
        const r = await send(n);
        expect(r.status, JSON.stringify(r.body)).toBe(422);
        expect(r.headers.get('content-type')).toContain('application/problem+json');
        expect(r.body).toMatchObject({ code: 'idempotency_key_reused', version });
      }
    }
    for (const n of nodes) {
      const got = await strongGet(n, key);
      expect(got.body).toMatchObject({ value: { v: 1 }, version });
    }
  });

  it('refuses numbers JSON cannot carry with 400, and keeps __proto__ as data', async () => {
    const [a, b] = nodes;
    expect(await putRaw(a, 'json/inf', '1e400')).toMatchObject({
      status: 400,
      body: { code: 'invalid_value' },
    });
    expect(await putRaw(a, 'json/inf', '{"x":1e999}')).toMatchObject({
      status: 400,
      body: { code: 'invalid_value' },
    });
    expect(await putRaw(a, 'json/big', '{"id":9007199254740993}')).toMatchObject({
      status: 400,
      body: { code: 'unsafe_integer' },
    });
    expect(await putRaw(a, 'json/deep', `${'['.repeat(1001)}${']'.repeat(1001)}`)).toMatchObject({
      status: 400,
      body: { code: 'invalid_value' },
    });
    for (const k of ['json/inf', 'json/big', 'json/deep']) expect((await strongGet(b, k)).status).toBe(404);

    const proto = '{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}';
    expect((await putRaw(a, 'json/proto', proto)).status).toBe(200);
    const got = await fetch(kvUrl(b, 'json/proto', `consistency=strong&${WAIT}`));
    const text = await got.text();
    expect(text).toContain('"value":{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}');
  });
});
