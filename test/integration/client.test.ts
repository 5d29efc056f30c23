import net from 'node:net';
import { LagoonClient, LagoonError } from 'lagoon/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestsAgree, http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * The typed client (`lagoon/client`, through package.json exports) against three real nodes on the real Kafka
 * cluster: sessions across nodes, a write retried after a timeout applied once, compare-and-set under
 * contention from three clients, and a node killed mid-run. Every wait is a liveness bound (minutes), never a
 * speed claim: a slow machine makes these tests slower, not red.
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

/** Per test: a liveness bound for a loaded 2-core machine, far above what a test needs. */
const TEST_MS = 900_000;
/** Server-side waits (replica catch-up, write verdicts): generous, so slowness never fails a call. */
const WAIT_MS = 60_000;
const urls = () => nodes.map((n) => n.url);
/** A client as tests use it: patient with verdicts (the defaults suit services, not a loaded CI machine). */
const newClient = (opts: Partial<ConstructorParameters<typeof LagoonClient>[0]> = {}) =>
  new LagoonClient({ nodes: urls(), verdictTimeoutMs: 300_000, ...opts });
const strongGet = (n: NodeProc, key: string) =>
  http('GET', kvUrl(n, key, `consistency=strong&timeoutMs=${WAIT_MS}`), { timeoutMs: 120_000 });

async function waitConverged(): Promise<void> {
  const until = Date.now() + 180_000;
  while (!(await digestsAgree(nodes))) {
    if (Date.now() > until) throw new Error('replicas did not converge in 3 minutes');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A TCP proxy to `port` that forwards requests but never returns the answer: the node acts on the request, the
 * client hears nothing and times out. Records each connection and the raw answer the node gave.
 */
async function swallowingProxy(port: number) {
  const connections: Array<{ at: number; answer?: { at: number; raw: string } }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const conn: (typeof connections)[number] = { at: Date.now() };
    connections.push(conn);
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    // end: false — when the client gives up, the node must still be able to finish and answer (into the void).
    client.pipe(upstream, { end: false });
    let raw = '';
    upstream.on('data', (d: Buffer) => {
      raw += d.toString('utf8');
      conn.answer = { at: Date.now(), raw };
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${own}`,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Status and JSON body of a raw HTTP/1.1 answer (Content-Length framed, as the nodes send JSON). */
function parseAnswer(raw: string): { status: number; body: Record<string, unknown> } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end))?.[1]);
  const body = raw.slice(end + 4);
  if (!Number.isFinite(length) || Buffer.byteLength(body) < length) return undefined;
  return { status, body: JSON.parse(body) as Record<string, unknown> };
}

async function until<T>(what: string, probe: () => T | undefined, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('LagoonClient on a real cluster', () => {
  it(
    'reads its own writes through three different nodes with one client',
    async () => {
      const client = newClient();
      for (let i = 0; i < 9; i++) {
        const [w, r1, r2] = [nodes[i % 3]!, nodes[(i + 1) % 3]!, nodes[(i + 2) % 3]!];
        const key = `ryw/${i % 4}`;
        const put = await client.put(key, { i }, { node: w.url, timeoutMs: WAIT_MS });
        expect(put.nodeUrl).toBe(w.url);
        for (const n of [r1, r2]) {
          const got = await client.get<{ i: number }>(key, {
            consistency: 'session',
            timeoutMs: WAIT_MS,
            node: n.url,
          });
          expect(got.servedBy).toBe(n.id);
          expect(got.found && got.value).toEqual({ i });
          expect(got.version).toBe(put.version);
          expect(got.consistency).toBe('session');
          expect(got.lagRecords === null || got.lagRecords >= 0).toBe(true);
        }
      }
      // A batch written on one node, then scanned at session level on another, page by page.
      const b = await client.batch(
        Array.from({ length: 5 }, (_, i) => ({ op: 'put' as const, key: `ryw/batch/${i}`, value: i })),
        { node: nodes[2].url, timeoutMs: WAIT_MS },
      );
      expect(b.status).toBe('applied');
      const seen: unknown[] = [];
      for await (const page of client.scan({
        prefix: 'ryw/batch/',
        limit: 2,
        consistency: 'session',
        timeoutMs: WAIT_MS,
        node: nodes[0].url,
      })) {
        seen.push(...page.items.map((it) => it.value));
      }
      expect(seen).toEqual([0, 1, 2, 3, 4]);
      // The session is portable: a new client resumes it and reads the writes anywhere.
      const resumed = new LagoonClient({ nodes: [nodes[1].url], session: client.session()! });
      const last = await resumed.get('ryw/batch/4', { consistency: 'session', timeoutMs: WAIT_MS });
      expect(last.found && last.value).toBe(4);
      const status = await client.status({ node: nodes[1].url });
      expect(status.node).toBe(nodes[1].id);
      const lag = await client.lag({ node: nodes[2].url });
      expect(lag.node).toBe(nodes[2].id);
    },
    TEST_MS,
  );

  it(
    'retries a write whose answer was lost, with the same Idempotency-Key: it applies once',
    async () => {
      const proxy = await swallowingProxy(nodes[0].port);
      try {
        // The proxied node takes the write; its answer never arrives; the client times out and goes elsewhere.
        const ATTEMPT_MS = 15_000;
        const client = new LagoonClient({
          nodes: [proxy.url, nodes[1].url, nodes[2].url],
          attemptTimeoutMs: ATTEMPT_MS,
          // Later attempts may time out too on a loaded machine: each retry is as safe as the first.
          maxAttempts: 20,
          verdictTimeoutMs: 300_000,
        });
        const key = 'lost-answer/create-once';
        // Create-only: had the retry been applied as a second write, it would have failed with 412.
        const r = await client.put(key, { once: true }, { ifNoneMatch: true });
        expect(r.attempts).toBeGreaterThanOrEqual(2);
        expect(r.nodeUrl).not.toBe(proxy.url);
        expect(proxy.connections.length).toBeGreaterThanOrEqual(1);
        // The proxied node did take the first attempt: it answered (into the void) for the same write.
        const first = proxy.connections[0]!;
        const answer = await until('the proxied node to answer', () =>
          first.answer === undefined ? undefined : parseAnswer(first.answer.raw),
        );
        expect([200, 202]).toContain(answer.status);
        if (answer.status === 200) expect(answer.body.version).toBe(r.version);
        // Answered before the client gave up: the first record was decided before the retry was written, so the
        // retry can only have been the duplicate, answered as the original's outcome.
        if (answer.status === 200 && first.answer!.at < first.at + ATTEMPT_MS) expect(r.replayed).toBe(true);
        console.info(
          `lost answer: first attempt ${answer.status} ${String(answer.body.version)}, client got ${r.version} after ${r.attempts} attempts (replayed ${r.replayed})`,
        );
        // One write, one version, everywhere.
        for (const n of nodes) {
          const got = await strongGet(n, key);
          expect(got.status).toBe(200);
          expect(got.body).toMatchObject({ value: { once: true }, version: r.version });
        }
        const again = await client.put(key, { once: true }, { ifNoneMatch: true }).catch((e: unknown) => e);
        expect(again).toBeInstanceOf(LagoonError);
        expect(again).toMatchObject({ code: 'precondition_failed', status: 412, definite: true });
      } finally {
        await proxy.close();
      }
    },
    TEST_MS,
  );

  it(
    '20 concurrent update() increments from 3 clients on 3 nodes end at exactly 20 on every replica',
    async () => {
      const key = 'cas/counter';
      const clients = nodes.map((_, i) => newClient({ nodes: [...urls().slice(i), ...urls().slice(0, i)] }));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          clients[i % 3]!.update<number>(key, (n) => (n ?? 0) + 1, { maxAttempts: 500, timeoutMs: WAIT_MS }),
        ),
      );
      // Every increment won exactly once, each from the value the one before it wrote.
      expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect(new Set(results.map((r) => r.nodeUrl)).size).toBe(3);
      const retries = results.reduce((s, r) => s + r.updateAttempts - 1, 0);
      console.info(`cas: 20 increments, ${retries} lost races retried`);
      for (const n of nodes) expect((await strongGet(n, key)).body.value).toBe(20);
      await waitConverged();
      for (const n of nodes) expect((await http('GET', kvUrl(n, key))).body.value).toBe(20);
    },
    TEST_MS,
  );

  it(
    'routes around a node killed mid-run without surfacing an error',
    async () => {
      const client = newClient({ routing: 'round-robin' });
      const errors: unknown[] = [];
      let done = 0;
      let afterKill = 0;
      let rerouted = 0;
      let killed = false;
      let running = true;
      const written = new Map<string, number>();
      const worker = async (w: number) => {
        for (let i = 0; running; i++) {
          const key = `kill/${w}/${i % 5}`;
          try {
            const put = await client.put(key, i, { timeoutMs: WAIT_MS });
            written.set(key, i);
            const got = await client.get<number>(key, { consistency: 'session', timeoutMs: WAIT_MS });
            if (!got.found || got.value !== i)
              throw new Error(`${key}: read ${JSON.stringify(got)} after writing ${i}`);
            done++;
            if (killed) {
              afterKill++;
              // A call that met the dead node (refused, or cut mid-request) and was answered by another one.
              if (put.attempts > 1 || got.attempts > 1) rerouted++;
            }
          } catch (e) {
            errors.push(e);
            return;
          }
        }
      };
      const workers = [0, 1, 2, 3].map(worker);
      await until(
        '40 operations before the kill',
        () => (done >= 40 || errors.length > 0 ? true : undefined),
        300_000,
      );
      // Set first: a call cut by the kill finishes after it, and counts as rerouted.
      killed = true;
      await nodes[0].kill('SIGKILL');
      await until(
        '60 operations after the kill',
        () => (afterKill >= 60 || errors.length > 0 ? true : undefined),
        300_000,
      );
      running = false;
      await Promise.all(workers);
      expect(errors).toEqual([]);
      // Round-robin starts every third call on the dead node: some calls did meet it.
      expect(rerouted).toBeGreaterThan(0);
      console.info(
        `node kill: ${done} write+read pairs, ${afterKill} after the kill (${rerouted} rerouted), no error surfaced`,
      );
      // Everything the client was told it wrote is there, on the nodes still up.
      for (const n of [nodes[1], nodes[2]]) {
        for (const [key, i] of written) expect((await strongGet(n, key)).body.value).toBe(i);
      }
    },
    TEST_MS,
  );
});
