import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startProxies } from '../../src/chaos/proxy.js';
import { findFreeBasePort, LocalCluster } from '../../src/cluster/local-cluster.js';
import { kafkaClient } from '../../src/log/kafka-client.js';
import { ensureTopic } from '../../src/log/topic.js';
import { eventually, localCluster, uniqueName } from '../support/kafka.js';
import { http, kvUrl, startNodes } from '../support/nodes.js';

// Runs only where the suite has a local cluster (JVMs and jars), but starts its own proxied cluster:
// the shared one must not have its listeners rerouted.
const local = localCluster();

/**
 * What still keeps the cluster from being whole, through `bootstrap`: partitions (internal ones included) whose ISR
 * lacks a replica, and partitions of a probe topic that do not take an acks=all write at once. After a partition
 * heals, a follower's fetch that was cut mid-way only recovers when it times out (replica.socket.timeout.ms, 30 s),
 * and the ISR may shrink only then: a full ISR alone does not prove the followers fetch again, an acknowledged
 * acks=all write to every partition does. Empty when the cluster is whole.
 */
async function notWhole(bootstrap: string[]): Promise<string[]> {
  const kafka = kafkaClient(
    { brokers: bootstrap, clientId: uniqueName('proxied-whole') },
    { requestTimeout: 5000, retry: { retries: 0 } },
  );
  const admin = kafka.admin();
  await admin.connect();
  const problems: string[] = [];
  try {
    await ensureTopic(admin, {
      topic: 'whole-probe',
      partitions: 3,
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    const topics = await admin.listTopics();
    for (const t of (await admin.fetchTopicMetadata({ topics })).topics) {
      for (const p of t.partitions) {
        if (p.isr.length < p.replicas.length)
          problems.push(`${t.name}/${p.partitionId} isr [${p.isr}] of [${p.replicas}]`);
      }
    }
  } finally {
    await admin.disconnect().catch(() => {});
  }
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (const partition of [0, 1, 2]) {
      await producer
        .send({ topic: 'whole-probe', acks: -1, timeout: 5000, messages: [{ partition, value: 'probe' }] })
        .catch((e: Error) => problems.push(`whole-probe/${partition} acks=all write: ${e.message}`));
    }
  } finally {
    await producer.disconnect().catch(() => {});
  }
  return problems;
}

/** Waits until `notWhole` finds nothing: a liveness bound of minutes, since stuck fetches must time out first. */
async function waitWhole(bootstrap: string[]): Promise<void> {
  let problems: string[] = [];
  await eventually(
    'a whole cluster after the heal',
    async () => {
      problems = await notWhole(bootstrap);
      return problems.length === 0 ? true : undefined;
    },
    240_000,
    1000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; still: ${problems.join(', ')}`);
  });
}

/** Broker addresses as a metadata request through `bootstrap` lists them, by node id. */
async function advertised(bootstrap: string[]): Promise<Map<number, string>> {
  const admin = kafkaClient(
    { brokers: bootstrap, clientId: uniqueName('proxied-meta') },
    { connectionTimeout: 2000, requestTimeout: 3000, retry: { retries: 0 } },
  ).admin();
  await admin.connect();
  try {
    const desc = await admin.describeCluster();
    return new Map(desc.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`]));
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

describe.skipIf(!local)('proxied local cluster', () => {
  let dataDir: string | undefined;
  let cluster: LocalCluster | undefined;
  let proxies = new Map<number, FaultProxy>();

  const proxyAddress = (id: number) => `127.0.0.1:${cluster!.broker(id).proxyPort}`;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-proxied-'));
    cluster = LocalCluster.open({
      dataDir,
      brokers: 3,
      basePort: await findFreeBasePort(3),
      proxied: true,
      progress: (line) => console.log(`[proxied kafka] ${line}`),
    });
    // Proxies first: the brokers replicate through them from the start.
    proxies = await startProxies(cluster);
    await cluster.start({ owner: process.pid, timeoutMs: 240_000 });
  }, 300_000);

  afterAll(async () => {
    if (cluster) await cluster.stop(10_000);
    for (const p of proxies.values()) await p.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('records proxied mode and bootstraps from the proxies, which the brokers advertise', async () => {
    const c = cluster!;
    const again = LocalCluster.open({ dataDir: dataDir! });
    expect(again.proxied).toBe(true);
    expect(c.bootstrap).toEqual([1, 2, 3].map(proxyAddress));
    const props = fs.readFileSync(c.broker(1).propsFile, 'utf8');
    expect(props).toContain(`advertised.listeners=PLAINTEXT://${proxyAddress(1)}\n`);
    const seen = await eventually('metadata through the proxies', () => advertised(c.bootstrap));
    expect([...seen.entries()].sort()).toEqual([1, 2, 3].map((id) => [id, proxyAddress(id)]));
  });

  it('produces and consumes through the proxies', async () => {
    const c = cluster!;
    const topic = uniqueName('t-proxied');
    const kafka = kafkaClient({ brokers: c.bootstrap, clientId: uniqueName('proxied') });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopic(admin, { topic, partitions: 3, replicationFactor: 3, minInsyncReplicas: 2 });
    } finally {
      await admin.disconnect();
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const values = Array.from({ length: 30 }, (_, i) => `v${i}`);
    try {
      // acks=all with min ISR 2: each write was replicated, i.e. fetched through a follower's path to
      // the leader's proxy. A new topic's leaders may take a moment: retry until a liveness bound.
      await eventually('an acknowledged batch', async () => {
        await producer.send({
          topic,
          acks: -1,
          messages: values.map((value, i) => ({ key: `k${i}`, value, partition: i % 3 })),
        });
        return true;
      });
    } finally {
      await producer.disconnect();
    }
    const consumer = kafka.consumer({ groupId: uniqueName('g-proxied') });
    await consumer.connect();
    const got = new Set<string>();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (message.value) got.add(message.value.toString());
        },
      });
      await eventually('every record consumed', () => (values.every((v) => got.has(v)) ? true : undefined));
    } finally {
      await consumer.disconnect();
    }
    for (const p of proxies.values()) expect(p.stats().accepted).toBeGreaterThan(0);
  });

  it('routes clients through the proxies: a black-holed broker is still listed at its proxy, unreachable until healed', async () => {
    const c = cluster!;
    const victim = 1;
    const proxy = proxies.get(victim)!;
    proxy.setFault({ kind: 'blackhole' });
    try {
      // Metadata through the other brokers' proxies names the victim by its proxy address: a client
      // following it goes into the black hole, there is no direct address to bypass it.
      const others = c.bootstrap.filter((a) => a !== proxyAddress(victim));
      const seen = await eventually('metadata through the other proxies', () => advertised(others));
      expect(seen.get(victim)).toBe(proxyAddress(victim));
      // A client that only knows the victim gets no answer at all (the proxy drops its request).
      await expect(advertised([proxyAddress(victim)])).rejects.toThrow();
      expect(proxy.stats().bytesDropped).toBeGreaterThan(0);
    } finally {
      proxy.setFault({ kind: 'none' });
    }
    const healed = await eventually('metadata through the healed proxy', () =>
      advertised([proxyAddress(victim)]),
    );
    expect(healed.get(victim)).toBe(proxyAddress(victim));
    // The victim's followers lost their fetches in the partition: the next test starts from a whole cluster.
    await waitWhole(c.bootstrap);
  });

  // SPEC §3 / issue 13 hole 5: a node cut off from Kafka does not know how far behind it is, so it must not
  // serve `bounded&maxLag=0` (it once answered 200 with Lagoon-Lag-Records: 0 indefinitely). Every broker is
  // black-holed at its proxy — the only way any client reaches it — so the node is cut off for certain.
  it('a node cut off from Kafka refuses bounded maxLag=0 reads (503) and still answers eventual reads', async () => {
    const c = cluster!;
    const { nodes, stopAll } = await startNodes(1, {
      brokers: c.bootstrap,
      partitions: 3,
      env: { LAGOON_KAFKAJS_LOG: 'info' },
    });
    const node = nodes[0]!;
    const key = uniqueName('cutoff');
    const bounded = kvUrl(node, key, 'consistency=bounded&maxLag=0&timeoutMs=500');
    try {
      const put = await eventually('an acknowledged write', async () => {
        const r = await http('PUT', kvUrl(node, key), { body: { v: 1 } });
        return r.status === 200 ? r : undefined;
      });
      expect(put.body.version).toBeTypeOf('string');
      // Connected and caught up: served, with a record lag of 0.
      const ok = await eventually('a maxLag=0 read while connected', async () => {
        const r = await http('GET', bounded);
        return r.status === 200 ? r : undefined;
      });
      expect(ok.body.value).toEqual({ v: 1 });
      expect(ok.headers.get('lagoon-lag-records')).toBe('0');

      for (const p of proxies.values()) p.setFault({ kind: 'blackhole' });
      // Once its last end offset is older than the bound allows, the node refuses: it cannot know.
      const refused = await eventually('a maxLag=0 read refused while cut off', async () => {
        const r = await http('GET', bounded);
        return r.status === 503 ? r : undefined;
      });
      expect(refused.body.code).toBe('too_stale');
      // And it stays refused for as long as it is cut off: no 200 slips through on a later read.
      for (let i = 0; i < 10; i++) {
        const r = await http('GET', bounded);
        expect(r.status, `read ${i} while cut off`).toBe(503);
        await new Promise((res) => setTimeout(res, 300));
      }
      // Eventual reads still answer from the replica, and say their lag is not known to be zero.
      const ev = await http('GET', kvUrl(node, key, 'consistency=eventual'));
      expect(ev.status).toBe(200);
      expect(ev.body.value).toEqual({ v: 1 });
      expect(ev.headers.get('lagoon-lag-records')).not.toBe('0');
    } finally {
      for (const p of proxies.values()) p.setFault({ kind: 'none' });
    }
    try {
      await waitWhole(c.bootstrap);
      const back = await eventually('a maxLag=0 read after healing', async () => {
        const r = await http('GET', bounded);
        return r.status === 200 ? r : undefined;
      });
      expect(back.body.value).toEqual({ v: 1 });
    } finally {
      await stopAll();
    }
  });

  // Issue 13 hole 9: a write answered 504 at its deadline must never apply later. Every broker is made slow
  // (1.5 s each way at its proxy), so a strict write with a 400 ms deadline leaves the node, is answered 504,
  // and is appended by the leader well after its deadline. Every replica must drop it (deadline_passed), so the
  // key keeps the value written before.
  it('a strict write that lands after its deadline (answered 504) is dropped by the replicas, never applied', async () => {
    const c = cluster!;
    // No heartbeats: with 3 s round trips they would keep the partition's lane busy, and a write queued behind
    // one never leaves the node by its deadline (a definite 503), so no write would ever land late. And a read
    // side that tolerates 3 s round trips (LAGOON_KAFKA_STALL_MS): by default it gives a connection up after 3 s
    // without a byte back, as it would a frozen broker, and the replica could never fetch the late record.
    const { nodes, stopAll } = await startNodes(1, {
      brokers: c.bootstrap,
      partitions: 3,
      env: { LAGOON_HEARTBEAT_MS: '0', LAGOON_KAFKA_STALL_MS: '20000' },
    });
    const node = nodes[0]!;
    const key = uniqueName('late');
    try {
      const first = await eventually('an acknowledged write', async () => {
        const r = await http('PUT', kvUrl(node, key), { body: { v: 'before' } });
        return r.status === 200 ? r : undefined;
      });
      const [partition, offset] = String(first.body.version).split('-').map(Number) as [number, number];
      for (const p of proxies.values()) p.setFault({ kind: 'latency', ms: 1500 });
      let late: Awaited<ReturnType<typeof http>>;
      try {
        // A write still queued in the node at its deadline (its lane busy with an earlier request) never left it:
        // a definite 503, nothing to apply later. Try again until one was sent.
        late = await eventually('a write sent to Kafka and unanswered at its deadline', async () => {
          const r = await http('PUT', kvUrl(node, key, 'timeoutMs=400'), { body: { v: 'late' } });
          if (r.status === 503 && r.body.code === 'kafka_unavailable' && r.body.definite === true)
            return undefined;
          return r;
        });
        // Sent to Kafka, no answer by the deadline: outcome unknown at that moment.
        expect(late.status, JSON.stringify(late.body)).toBe(504);
        expect(late.body.code).toBe('write_outcome_unknown');
        // The record reaches the log later: the replica's verdict on it is deadline_passed.
        // Walk the partition from the first write on, past positions without a write and other keys' records, up
        // to what the replica has applied so far; the walk resumes where it stopped.
        let next = offset + 1;
        const verdict = await eventually('the late record in the log, decided', async () => {
          for (;;) {
            const w = await http('GET', `${node.url}/v1/writes/${partition}-${next}`);
            if (w.status !== 200 || w.body.status === 'pending') return undefined;
            if (w.body.key === key) return w.body;
            next++;
          }
        });
        expect(verdict).toMatchObject({ key, status: 'rejected', reason: 'deadline_passed' });
      } finally {
        for (const p of proxies.values()) p.setFault({ kind: 'none' });
      }
      const now = await http('GET', kvUrl(node, key, 'consistency=strong'));
      expect(now.status).toBe(200);
      expect(now.body.value).toEqual({ v: 'before' });
      expect(now.body.version).toBe(first.body.version);
    } finally {
      await stopAll();
    }
  });
});
