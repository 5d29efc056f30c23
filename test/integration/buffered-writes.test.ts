import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../../src/core/record.js';
import { parseVersion } from '../../src/core/version.js';
import { eventually, localCluster, testKafka } from '../support/kafka.js';
import { digestsAgree, http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';
import { promlint } from '../support/promlint.js';

/**
 * Buffered writes (SPEC §4, issue 8) on the shared cluster, every broker down: 1,000 writes through three nodes
 * (LAGOON_WRITE_MODE=buffered) answered 202; one node SIGKILLed and restarted while the brokers are still down;
 * brokers back; every write applied exactly once on every replica, in per-key order. Strict writes in the same
 * outage answer 503 at once. Bounds are liveness bounds (minutes), never speed.
 */

const cluster = localCluster();
const t0 = Date.now();
/** Progress marks on stderr: on a shared 2-core machine the phases' lengths vary a lot. */
const mark = (what: string) =>
  process.stderr.write(`[buffered-writes +${((Date.now() - t0) / 1000).toFixed(0)} s] ${what}\n`);
const KEYS = 100;
const PER_KEY = 10;

interface Answered {
  key: string;
  n: number;
  id: string;
  node: NodeProc;
}

describe.skipIf(!cluster)('buffered writes with every broker down', () => {
  let nodes: NodeProc[];
  let tiny: NodeProc;
  let stopAll: () => Promise<void>;
  let stopTiny: () => Promise<void>;

  beforeAll(async () => {
    ({ nodes, stopAll } = await startNodes(3, { env: { LAGOON_WRITE_MODE: 'buffered' } }));
    const small = await startNodes(1, { env: { LAGOON_WRITE_MODE: 'buffered', LAGOON_OUTBOX_MAX: '3' } });
    tiny = small.nodes[0]!;
    stopTiny = small.stopAll;
  });
  afterAll(async () => {
    await cluster!.start();
    await stopAll?.();
    await stopTiny?.();
  });

  it('bad input changes nothing; with Kafka up a buffered write is an ordinary acknowledged write', async () => {
    const n = nodes[0]!;
    const bad = await http('PUT', kvUrl(n, 'mode-bad'), {
      body: 1,
      headers: { 'lagoon-write-mode': 'lazy' },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body).toMatchObject({ code: 'invalid_write_mode', definite: true });
    const badRead = await http('GET', kvUrl(n, 'mode-bad'), { headers: { 'lagoon-read-buffered': 'yes' } });
    expect(badRead.status).toBe(400);
    expect(badRead.body.code).toBe('invalid_read_buffered');
    expect((await http('GET', kvUrl(n, 'mode-bad'))).status).toBe(404);
    expect((await http('GET', `${n.url}/v1/writes/ob-nonexistent12345`)).status).toBe(404);

    const ok = await http('PUT', kvUrl(n, 'mode-up'), { body: 'up' });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('acknowledged');
    const st = await http('GET', `${n.url}/v1/status`);
    expect(st.body).toMatchObject({ writeMode: 'buffered', outboxDepth: 0, outbox: { records: 0 } });
  });

  it('1,000 buffered writes through 3 nodes survive a SIGKILL and reach every replica once, in per-key order', async () => {
    await http('PUT', kvUrl(nodes[0]!, 'cond-exists'), {
      body: 'there',
      headers: { 'lagoon-write-mode': 'strict' },
    });
    await eventually('replicas caught up', async () => ((await digestsAgree(nodes)) ? true : undefined));

    await cluster!.stop(5000);
    mark('brokers stopped');
    await eventually('nodes see Kafka down', async () => {
      const st = await Promise.all([...nodes, tiny].map((n) => http('GET', `${n.url}/v1/status`)));
      return st.every((s) => s.body.brokers.reachable === false) ? true : undefined;
    });

    // Each key is written through one node, its writes one after another (each answered before the next is
    // sent); keys go in parallel. Key k → node k % 3.
    const answered: Answered[] = [];
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        const node = nodes[k % 3]!;
        const key = `buf-${k}`;
        for (let n = 0; n < PER_KEY; n++) {
          const r = await http('PUT', kvUrl(node, key), { body: { k, n }, timeoutMs: 120_000 });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status === 202) {
            expect(r.body).toMatchObject({ status: 'buffered', key });
            expect(r.headers.get('location')).toBe(`/v1/writes/${r.body.id}`);
            answered.push({ key, n, id: r.body.id, node });
          }
        }
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 202: KEYS * PER_KEY });
    mark(`${KEYS * PER_KEY} writes answered 202`);

    // Strict writes in the same outage: 503 at once (60 s deadline; a liveness bound well below it), also to a
    // key with buffered writes waiting.
    for (const [i, n] of nodes.entries()) {
      for (const key of [`strict-${i}`, `buf-${i}`]) {
        const w = await http('PUT', kvUrl(n, key, 'timeoutMs=60000'), {
          body: 'strict',
          headers: { 'lagoon-write-mode': 'strict' },
          timeoutMs: 90_000,
        });
        expect(w.status).toBe(503);
        expect(w.ms).toBeLessThan(30_000);
        expect(w.body).toMatchObject({ code: 'kafka_unavailable', definite: true });
      }
    }

    // A conditional buffered write is decided when it reaches the log: this one will be rejected there.
    const cond = await http('PUT', kvUrl(nodes[1]!, 'cond-exists'), {
      body: 'again',
      headers: { 'if-none-match': '*' },
    });
    expect(cond.status).toBe(202);

    // A client retry of a buffered write (same Idempotency-Key) gets the same id, not a second entry.
    const first = await http('PUT', kvUrl(nodes[2]!, 'idem-buf'), {
      body: 1,
      headers: { 'idempotency-key': 'r1' },
    });
    const again = await http('PUT', kvUrl(nodes[2]!, 'idem-buf'), {
      body: 1,
      headers: { 'idempotency-key': 'r1' },
    });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    // Reads show the log's view, unless asked for this node's buffered writes.
    const n0 = nodes[0]!;
    expect((await http('GET', kvUrl(n0, 'buf-0'))).status).toBe(404);
    const mine = await http('GET', kvUrl(n0, 'buf-0'), { headers: { 'lagoon-read-buffered': 'true' } });
    expect(mine.status).toBe(200);
    expect(mine.headers.get('lagoon-read-source')).toBe('outbox');
    expect(mine.body).toMatchObject({
      key: 'buf-0',
      value: { k: 0, n: PER_KEY - 1 },
      buffered: true,
      version: null,
    });
    const last0 = answered.find((a) => a.key === 'buf-0' && a.n === PER_KEY - 1)!;
    expect((await http('GET', `${n0.url}/v1/writes/${last0.id}`)).body).toMatchObject({ status: 'buffered' });

    // Depth and age everywhere it is shown.
    const st = await http('GET', `${n0.url}/v1/status`);
    expect(st.body.outboxDepth).toBeGreaterThanOrEqual((KEYS / 3) * PER_KEY);
    expect(st.body.outbox.oldestSeconds).toBeGreaterThan(0);
    const lag = await eventually('lag report shows the outbox', async () => {
      const r = await http('GET', `${n0.url}/v1/lag`);
      return r.body.outboxDepth > 0 ? r.body : undefined;
    });
    expect(lag.outboxOldestSeconds).toBeGreaterThan(0);
    const metrics = await (await fetch(`${n0.url}/metrics`)).text();
    expect(metrics).toMatch(/^lagoon_outbox_records\{node="[^"]+"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^lagoon_outbox_oldest_seconds\{node="[^"]+"\} \d/m);
    expect(promlint(metrics)).toEqual([]);

    // A full outbox refuses, definitely, and stores nothing.
    for (let i = 0; i < 3; i++)
      expect((await http('PUT', kvUrl(tiny, `tiny-${i}`), { body: i })).status).toBe(202);
    const full = await http('PUT', kvUrl(tiny, 'tiny-3'), { body: 3 });
    expect(full.status).toBe(503);
    expect(full.body).toMatchObject({ code: 'outbox_full', definite: true, retryable: true });
    expect((await http('GET', `${tiny.url}/v1/status`)).body.outboxDepth).toBe(3);

    // SIGKILL one node while its writes are buffered, restart it with the brokers still down: they are all there.
    const victim = nodes[1]!;
    const victimCount = (await http('GET', `${victim.url}/v1/status`)).body.outboxDepth;
    await victim.kill('SIGKILL');
    mark(`${victim.id} SIGKILLed with ${victimCount} writes buffered`);
    const restarted = victim.restart().catch(() => undefined); // ready (replica joined) only once Kafka is back
    await eventually('restarted node answers', async () =>
      (await http('GET', `${victim.url}/healthz`, { timeoutMs: 2000 })).status === 200 ? true : undefined,
    );
    expect((await http('GET', `${victim.url}/v1/status`)).body.outboxDepth).toBe(victimCount);
    const some = answered.find((a) => a.node === victim)!;
    expect((await http('GET', `${victim.url}/v1/writes/${some.id}`)).body).toMatchObject({
      status: 'buffered',
    });

    mark('restarted node answers with its outbox intact; starting the brokers');
    await cluster!.start();
    mark('brokers back');
    await restarted;
    await eventually(
      'every outbox drained',
      async () => {
        const st = await Promise.all([...nodes, tiny].map((n) => http('GET', `${n.url}/v1/status`)));
        return st.every((s) => s.body.outboxDepth === 0) ? true : undefined;
      },
      300_000,
      500,
    );
    mark('every outbox drained');
    await eventually(
      'equal digests',
      async () => ((await digestsAgree(nodes)) ? true : undefined),
      180_000,
      500,
    );

    // buffered → applied, with the version, for every write; per key, versions in the order the writes were answered.
    const versionOf = new Map<string, { partition: number; offset: number }>();
    await inChunks(answered, async (a) => {
      const r = await eventually(`write ${a.id} decided`, async () => {
        const w = await http('GET', `${a.node.url}/v1/writes/${a.id}`);
        return w.body.status === 'applied' ? w.body : undefined;
      });
      versionOf.set(a.id, parseVersion(r.version)!);
    });
    for (let k = 0; k < KEYS; k++) {
      const offsets = answered
        .filter((a) => a.key === `buf-${k}`)
        .sort((x, y) => x.n - y.n)
        .map((a) => versionOf.get(a.id)!.offset);
      expect(offsets, `buf-${k}`).toEqual([...offsets].sort((x, y) => x - y));
      expect(new Set(offsets).size).toBe(PER_KEY);
    }
    const condOutcome = await http('GET', `${nodes[1]!.url}/v1/writes/${cond.body.id}`);
    expect(condOutcome.body).toMatchObject({ status: 'rejected', reason: 'already_exists' });

    // Exactly once on every replica: each write's records in the log (a resend may have left a copy) — one is
    // applied, any other is a duplicate of it; and every key reads its last write.
    mark('replicas agree; every write applied, per-key order held');
    const perIdem = await idemRecords(await topicOf(nodes[0]!));
    for (const a of answered) expect(perIdem.get(`lagoon-outbox:${a.id}`)?.length ?? 0).toBeGreaterThan(0);
    for (const n of nodes) {
      await inChunks(answered, async (a) => {
        const copies = perIdem.get(`lagoon-outbox:${a.id}`)!;
        const verdicts = await Promise.all(copies.map((v) => http('GET', `${n.url}/v1/writes/${v}`)));
        const applied = verdicts.filter((v) => v.body.status === 'applied');
        expect(applied.length, `${n.id} ${a.id}`).toBe(1);
        expect(
          verdicts.filter((v) => v.body.status !== 'applied').every((v) => v.body.status === 'duplicate'),
        ).toBe(true);
      });
      for (let k = 0; k < KEYS; k++) {
        const r = await http('GET', kvUrl(n, `buf-${k}`));
        expect(r.body.value, `${n.id} buf-${k}`).toEqual({ k, n: PER_KEY - 1 });
      }
    }
    mark('exactly once on every replica');
  }, 900_000);
});

/** Runs `fn` over `items`, 50 at a time. */
async function inChunks<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += 50) await Promise.all(items.slice(i, i + 50).map(fn));
}

async function topicOf(n: NodeProc): Promise<string> {
  return (await http('GET', `${n.url}/v1/status`)).body.topic;
}

/** Every write record of the topic, by idempotency key: their versions in log order. */
async function idemRecords(topic: string): Promise<Map<string, string[]>> {
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const seen = new Map<number, number>();
  const out = new Map<string, string[]>();
  const consumer = kafka.consumer({ groupId: `check-${topic}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    const check = () => {
      if ([...want].every(([p, high]) => (seen.get(p) ?? 0) >= high)) resolve();
    };
    check();
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const offset = Number(message.offset);
        seen.set(partition, offset + 1);
        const rec = decodeRecord(message.key, message.value);
        if ((rec.op === 'put' || rec.op === 'del') && rec.idem !== undefined) {
          const list = out.get(rec.idem) ?? [];
          list.push(`${partition}-${offset}`);
          out.set(rec.idem, list);
        }
        check();
      },
    });
  });
  await eventually('topic read to its end', async () =>
    (await Promise.race([done.then(() => true), sleep(500)])) ? true : undefined,
  );
  await consumer.disconnect();
  return out;
}

const sleep = (ms: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), ms));
