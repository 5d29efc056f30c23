import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/partitioner.js';
import { ensureTopic } from '../../src/log/topic.js';
import { nodeProcessArgs } from '../../src/node/spawn.js';
import { brokers, eventually, testKafka, uniqueName } from '../support/kafka.js';
import { digestsAgree, freePort, http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

// Liveness bounds only (minutes): the shared CI machine is slow; nothing here measures time.
const LIVE = 180_000;

/** Starts one extra `lagoon node` process with its own flags (startNodes would wait for /readyz forever). */
async function spawnNode(
  dir: string,
  opts: { topic: string; partitions: number; role?: 'api' | 'all' },
): Promise<{ url: string; child: ChildProcess; logFile: string; stop: () => Promise<void> }> {
  const id = uniqueName('odd');
  const port = await freePort();
  const db = path.join(dir, id, 'lagoon.db');
  const logFile = path.join(dir, id, 'node.log');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  const args = nodeProcessArgs({
    id,
    port,
    brokers: brokers(),
    db,
    topic: opts.topic,
    partitions: opts.partitions,
  });
  const child = spawn(process.execPath, [...args, '--role', opts.role ?? 'all'], {
    stdio: ['ignore', out, out],
    env: { ...process.env, LAGOON_OWNER_PID: String(process.pid) },
  });
  fs.closeSync(out);
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    logFile,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

describe('a node whose --partitions disagrees with the topic', () => {
  let nodes: NodeProc[];
  let topic: string;
  let dir: string;
  let stopAll: () => Promise<void>;
  const odd: Array<Awaited<ReturnType<typeof spawnNode>>> = [];

  beforeAll(async () => {
    ({ nodes, topic, dir, stopAll } = await startNodes(2, { partitions: 6 }));
  });
  afterAll(async () => {
    await Promise.all(odd.map((o) => o.stop()));
    await stopAll?.();
  });

  it('takes no writes on any role, says why, and no replica diverges', async () => {
    odd.push(await spawnNode(dir, { topic, partitions: 4, role: 'all' }));
    odd.push(await spawnNode(dir, { topic, partitions: 4, role: 'api' }));
    for (const o of odd) {
      // Once it has looked at the topic, /readyz and /v1/status say what is wrong and how to fix it.
      const ready = await eventually(
        'the topic verdict on /readyz',
        async () => {
          const r = await http('GET', `${o.url}/readyz`);
          return r.status === 503 && /6 partitions/.test(r.body.detail ?? '') ? r : undefined;
        },
        LIVE,
      );
      expect(ready.body.code).toBe('topic_unsafe');
      expect(ready.body.detail).toMatch(/--partitions 6/);
      const status = await http('GET', `${o.url}/v1/status`);
      expect(status.body.topicProblem).toMatch(/topic has 6 partitions but this node is configured with 4/);
    }
    // Keys that 4 partitions would route elsewhere than 6: every one of them is refused, definitely.
    const keys = Array.from({ length: 40 }, (_, i) => `odd-${i}`).filter(
      (k) => partitionOf(k, 4) !== partitionOf(k, 6),
    );
    expect(keys.length).toBeGreaterThan(5);
    for (const o of odd) {
      for (const k of keys.slice(0, 5)) {
        const put = await http('PUT', `${o.url}/v1/kv/${encodeURIComponent(k)}`, { body: { from: 'odd' } });
        expect(put.status).toBe(503);
        expect(put.headers.get('content-type')).toContain('application/problem+json');
        expect(put.body.code).toBe('topic_unsafe');
      }
    }
    // The well-configured nodes keep working, and their replicas agree.
    for (const k of keys)
      expect((await http('PUT', kvUrl(nodes[0]!, k), { body: { from: 'good' } })).status).toBe(200);
    await eventually('digests agree', async () => ((await digestsAgree(nodes)) ? true : undefined), LIVE);
    for (const k of keys) {
      const got = await http('GET', kvUrl(nodes[1]!, k, 'consistency=strong'));
      expect(got.status).toBe(200);
      expect(got.body.value).toEqual({ from: 'good' });
    }
    // The odd all-role node never applied anything: its replica waits for a safe topic.
    const status = await http('GET', `${odd[0]!.url}/v1/status`);
    expect(status.body.replica.state).toBe('idle');
    expect(status.body.partitions.every((p: { appliedOffset: number }) => p.appliedOffset === 0)).toBe(true);
  });
});

describe('a topic deleted and recreated under the nodes', () => {
  let nodes: NodeProc[];
  let topic: string;
  let stopAll: () => Promise<void>;

  beforeAll(async () => {
    ({ nodes, topic, stopAll } = await startNodes(2, { partitions: 3 }));
  });
  afterAll(async () => {
    await stopAll?.();
  });

  it('is refused by every replica that kept its store: status says why, nothing is skipped silently', async () => {
    const [a, b] = nodes as [NodeProc, NodeProc];
    for (let i = 0; i < 60; i++) {
      expect((await http('PUT', kvUrl(a, `old-${i}`), { body: { gen: 'old', i } })).status).toBe(200);
    }
    await eventually('digests agree', async () => ((await digestsAgree(nodes)) ? true : undefined), LIVE);
    // b is down while the topic is replaced; a keeps running through it.
    await b.stop();
    const admin = testKafka().admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
      await eventually(
        'the topic is gone',
        async () => (!(await admin.listTopics()).includes(topic) ? true : undefined),
        LIVE,
      );
      // Recreated the way a node would, with fewer records than the stores applied: kafkajs would reset the
      // out-of-range fetch to offset 0, and the old code then skipped every new record as a redelivery.
      await eventually(
        'the topic is recreated',
        async () =>
          (await ensureTopic(admin, {
            topic,
            partitions: 3,
            replicationFactor: 3,
            minInsyncReplicas: 2,
          }).catch(() => undefined))
            ? true
            : undefined,
        LIVE,
      );
      const producer = testKafka().producer();
      await producer.connect();
      for (let i = 0; i < 3; i++) {
        const key = `new-${i}`;
        await producer.send({
          topic,
          acks: -1,
          messages: [
            {
              key,
              partition: partitionOf(key, 3),
              value: JSON.stringify({ v: 1, op: 'put', value: { gen: 'new' }, wid: `w${i}` }),
            },
          ],
        });
      }
      await producer.disconnect();
    } finally {
      await admin.disconnect();
    }

    // The running node notices (its periodic identity check, or the out-of-range reset) and stops applying.
    const aStatus = await eventually(
      'the running replica refuses the new log',
      async () => {
        const s = await http('GET', `${a.url}/v1/status`);
        return s.body.replica.state === 'failed' ? s.body : undefined;
      },
      LIVE,
    );
    expect(['topic_identity_mismatch', 'replica_diverged']).toContain(aStatus.replica.problem.code);
    expect(aStatus.replica.problem.message).toMatch(/new --db/);

    // The restarted node refuses it before applying anything.
    // Same id, port and SQLite file; it never becomes ready again (/readyz stays 503), so it is not awaited.
    void b.restart().catch(() => {});
    const bStatus = await eventually(
      'the restarted replica refuses the new log',
      async () => {
        const s = await http('GET', `${b.url}/v1/status`);
        return s.body.replica.state === 'failed' ? s.body : undefined;
      },
      LIVE,
    );
    expect(bStatus.replica.problem.code).toBe('topic_identity_mismatch');
    expect(bStatus.replica.problem.message).toMatch(/deleted and recreated/);
    for (const n of [a, b]) {
      const ready = await http('GET', `${n.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body.code).toBe('replica_diverged');
      // Nothing of the new log was applied on top of the old state.
      expect((await http('GET', kvUrl(n, 'new-0'))).status).toBe(404);
      const status = await http('GET', `${n.url}/v1/status`);
      const applied = status.body.partitions.reduce(
        (s: number, p: { recordsApplied: number }) => s + p.recordsApplied,
        0,
      );
      expect(applied).toBeGreaterThanOrEqual(60);
    }
  });

  // read-levels.ts refuses session/bounded/strong reads while replicaStatus().problem is set.
  it('strong and session reads on a refused replica do not serve the old data as current', async () => {
    for (const n of nodes) {
      for (const level of ['strong', 'bounded', 'session']) {
        const r = await http('GET', kvUrl(n, 'old-1', `consistency=${level}`));
        expect(r.status, `${n.id} ${level}`).toBe(503);
        expect(r.body.code).toBe('replica_diverged');
      }
      // Eventual reads still answer from what the store holds.
      expect((await http('GET', kvUrl(n, 'old-1', 'consistency=eventual'))).status).toBe(200);
    }
  });
});
