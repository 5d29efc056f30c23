import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { brokers, eventually, testKafka } from '../support/kafka.js';
import {
  addNode,
  digestsAgree,
  http,
  kvUrl,
  type NodeProc,
  startNodes,
  waitReady,
  writeLoop,
} from '../support/nodes.js';

/**
 * Replicas that can always be rebuilt (SPEC §7): a topic with a retention of seconds loses its first records; a
 * fresh node with a peer bootstraps from the peer's snapshot and reaches the same digest, one without a peer
 * reports GAP and serves nothing from those partitions; a node whose SQLite file was deleted comes back the same
 * way; a node added under write load converges.
 */

// Snapshots every 2 s (the node refuses an interval above half its retention setting).
const ENV = { LAGOON_SNAPSHOT_INTERVAL_MS: '2000', LAGOON_RETENTION_MS: '60000' };

async function logStarts(topic: string): Promise<Map<number, number>> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, Number(o.low)]));
  } finally {
    await admin.disconnect();
  }
}

const BIN = path.resolve(import.meta.dirname, '../../bin/lagoon.js');

function lagoon(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Sets topic-level configs (incremental: the others keep their values). */
async function setTopicConfig(topic: string, entries: Array<{ name: string; value: string }>): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const current = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
    });
    // alterConfigs replaces the topic's whole dynamic config: carry over what is set, then apply `entries`.
    const set = new Map(
      (current.resources[0]?.configEntries ?? [])
        .filter((e) => !e.isDefault && !e.readOnly)
        .map((e) => [e.configName, e.configValue]),
    );
    for (const e of entries) set.set(e.name, e.value);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [...set].map(([name, value]) => ({ name, value })),
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

describe('rebuilding replicas from snapshots', () => {
  let topic: string;
  let dir: string;
  let a: NodeProc;
  let b: NodeProc;
  let stopAll: () => Promise<void>;
  const extra: NodeProc[] = [];
  const written = new Map<string, number>();

  beforeAll(async () => {
    const started = await startNodes(2, { env: ENV });
    ({ topic, dir, stopAll } = started);
    [a, b] = started.nodes as [NodeProc, NodeProc];
    // Seconds of retention, segments rolled every second: the brokers (retention checked every 5 s in the local
    // cluster) delete the first records of every partition while the test writes.
    await setTopicConfig(topic, [
      { name: 'retention.ms', value: '3000' },
      { name: 'segment.ms', value: '1000' },
    ]);
    let n = 0;
    const put = async () => {
      const key = `rb-${n % 150}`;
      const r = await http('PUT', kvUrl(a, key), { body: { n } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      written.set(key, n++);
    };
    // Write until every partition has lost its first records (new records keep rolling the segments).
    const starts = await eventually(
      'retention deleting the first records of every partition',
      async () => {
        for (let i = 0; i < 30; i++) await put();
        const s = await logStarts(topic);
        return [...s.values()].every((o) => o > 0) && s.size === 6 ? s : undefined;
      },
      240_000,
      500,
    );
    console.log(`log start offsets after ${n} writes: ${JSON.stringify(Object.fromEntries(starts))}`);
    // Records are gone now; stop deleting, so a snapshot taken below stays younger than the retention (with 3 s a
    // snapshot ages out between install and first fetch: the node finds a new gap and rebuilds again, correctly
    // but not what this test is about).
    await setTopicConfig(topic, [{ name: 'retention.ms', value: String(3_600_000) }]);
    await eventually('the two replicas agree', async () => ((await digestsAgree([a, b])) ? true : undefined));
  }, 400_000);

  afterAll(async () => {
    await Promise.all(extra.map((n) => n.stop()));
    await stopAll?.();
  });

  async function expectSameData(n: NodeProc): Promise<void> {
    await eventually(`${n.id} agrees with the others`, async () =>
      (await digestsAgree([a, b, n])) ? true : undefined,
    );
    for (const [key, v] of written) {
      const r = await http('GET', kvUrl(n, key));
      expect(r.status, key).toBe(200);
      expect(r.body.value).toEqual({ n: v });
    }
  }

  it('a fresh node with a peer bootstraps from its snapshot and reaches the same digest', async () => {
    const c = await addNode({ topic, dir, peers: [a.url], env: ENV });
    extra.push(c);
    await waitReady(c, 180_000);
    const log = fs.readFileSync(c.logFile, 'utf8');
    expect(log).toContain('"event":"bootstrap_installed"');
    expect(log).not.toContain('"event":"partition_gap"');
    await expectSameData(c);
  }, 400_000);

  it('a fresh node without a peer reports GAP and serves nothing as complete', async () => {
    const d = await addNode({ topic, dir, peers: [], env: ENV });
    extra.push(d);
    const gap = await eventually(
      'readiness saying replica_gap',
      async () => {
        const r = await http('GET', `${d.url}/readyz`).catch(() => undefined);
        return r?.status === 503 && r.body.code === 'replica_gap' ? r.body : undefined;
      },
      180_000,
      500,
    );
    expect(gap.detail).toMatch(/deleted/);
    // Every key lives in a partition that lost records: refused at every level, eventual included.
    for (const key of [...written.keys()].slice(0, 20)) {
      for (const level of ['eventual', 'session', 'strong']) {
        const r = await http('GET', kvUrl(d, key, `consistency=${level}`));
        expect(r.status, `${key} ${level}`).toBe(503);
        expect(r.body.code).toBe('replica_gap');
      }
    }
    const scan = await http('GET', `${d.url}/v1/kv?limit=10`);
    expect(scan.status).toBe(503);
    expect(scan.body.code).toBe('replica_gap');
    // The lag report names the status, with its reason.
    const lag = await eventually('GAP in /v1/lag', async () => {
      const r = await http('GET', `${d.url}/v1/lag`);
      const mine = r.body.replicas?.find((x: { node?: string; group?: string }) =>
        (x.group ?? '').endsWith(d.id),
      );
      const parts = mine?.partitions ?? [];
      return parts.length > 0 && parts.every((p: { status: string }) => p.status === 'GAP')
        ? parts
        : undefined;
    });
    expect(lag[0].reason).toMatch(/deleted by retention/);
    // The dashboard, in a real headless Chromium, shows it too: the replica's status and its cells say GAP, the
    // cells' tooltips the reason.
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${d.url}/dashboard`);
      await page.waitForFunction(
        (id) =>
          (
            globalThis as unknown as {
              document: { querySelector(s: string): { textContent: string | null } | null };
            }
          ).document
            .querySelector(`[data-testid="status-${id}"]`)
            ?.textContent?.trim() === 'GAP',
        d.id,
        { timeout: 90_000 },
      );
      const cells = await page.$$eval(`[data-testid^="cell-${d.id}-"]`, (els) =>
        els.map((e) => {
          const el = e as unknown as { dataset: Record<string, string | undefined>; title: string };
          return { status: el.dataset.status, title: el.title };
        }),
      );
      expect(cells.length).toBe(6);
      for (const c of cells) {
        expect(c.status).toBe('GAP');
        expect(c.title).toMatch(/GAP — offsets? \d+(–\d+)? (was|were) deleted by retention/);
      }
    } finally {
      await browser.close();
    }
    // No snapshot is taken of a store with a gap.
    const snap = await http('GET', `${d.url}/v1/snapshot`);
    expect(snap.status).toBe(503);
    expect(snap.body.code).toBe('snapshot_unavailable');
  }, 400_000);

  it('a node whose SQLite file was deleted while it was down comes back by bootstrap with an equal digest', async () => {
    await b.stop();
    for (const f of fs.readdirSync(`${dir}/${b.id}`)) {
      if (f.startsWith('lagoon.db')) fs.rmSync(`${dir}/${b.id}/${f}`);
    }
    await b.restart();
    const log = fs.readFileSync(b.logFile, 'utf8');
    expect(log.split('"event":"bootstrap_installed"').length).toBeGreaterThan(1);
    await expectSameData(b);
  }, 400_000);

  it("lagoon snapshot create|list show a node's snapshots; lagoon node remove deletes a stopped node's group", async () => {
    const created = lagoon(['snapshot', 'create', '--node', a.url]);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/snapshot-\S+\.lsnap +offsets 0:\d+ 1:\d+/);
    const listed = lagoon(['snapshot', 'list', '--node', a.url]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out.trim().split('\n').length).toBeGreaterThanOrEqual(1);
    expect(listed.out).toContain(created.out.trim().split(/\s+/)[3]!);

    // The node without peers (second test) still runs: its group has a member, so it is not removed.
    const d = extra[1]!;
    const active = lagoon(['node', 'remove', d.id, '--kafka', brokers().join(',')]);
    expect(active.code).toBe(2);
    expect(active.err).toMatch(/still running/);
    await d.stop();
    const removed = await eventually('the stopped node removed', () => {
      const r = lagoon(['node', 'remove', d.id, '--kafka', brokers().join(',')]);
      return r.code === 0 ? r : undefined;
    });
    expect(removed.out).toContain(`lagoon-replica-${d.id}`);
    await eventually('its replica gone from the lag report', async () => {
      const r = await http('GET', `${a.url}/v1/lag`);
      return r.body.replicas.some((x: { node: string }) => x.node === d.id) ? undefined : true;
    });
  }, 400_000);
});

describe('adding a node under write load', () => {
  it('a 4th node converges to the same digest; its reads carry truthful staleness from the first answer', async () => {
    const { nodes, dir, topic, stopAll } = await startNodes(3);
    const [a] = nodes as [NodeProc];
    let d: NodeProc | undefined;
    try {
      const load = writeLoop(() => nodes, { prefix: 'grow', keys: 200, concurrency: 4, timeoutMs: 15_000 });
      await eventually('writes flowing', () => (load.ok > 300 ? true : undefined));
      d = await addNode({ topic, dir, peers: nodes.map((n) => n.url) });
      await waitReady(d, 180_000);
      // The first answers of the new node, while writes go on: a value older than the newest acknowledged one must
      // come with a lag or staleness above zero (the headers never claim freshness the replica does not have).
      const before = new Map(load.acked);
      let checked = 0;
      for (const [key, n] of [...before].slice(0, 50)) {
        const r = await http('GET', kvUrl(d, key));
        const lag = r.headers.get('lagoon-lag-records');
        const stale = r.headers.get('lagoon-staleness-ms');
        expect(r.headers.get('lagoon-served-by')).toBe(d.id);
        expect(lag, 'lag header').toMatch(/^(\d+|unknown)$/);
        expect(stale, 'staleness header').toMatch(/^(\d+|unknown)$/);
        if (r.status === 200 && r.body.value.n < n) {
          expect(`${lag}/${stale}`, `${key}: served ${r.body.value.n} < acked ${n}`).not.toBe('0/0');
        }
        checked++;
      }
      expect(checked).toBe(50);
      await load.stop();
      await eventually(
        'all four agree',
        async () => ((await digestsAgree([...nodes, d!])) ? true : undefined),
        180_000,
      );
      for (const [key, n] of load.acked) {
        const r = await http('GET', kvUrl(d, key));
        expect(r.body.value.n, key).toBeGreaterThanOrEqual(n);
      }
      const log = fs.readFileSync(d.logFile, 'utf8');
      expect(log).toContain('"event":"bootstrap_installed"');
      // The three were started without it in their --peers; it introduced itself (Lagoon-Peer), so each one's
      // lag report lists its replica and compares digests with it.
      for (const n of nodes) {
        await eventually(`${n.id} knows the added node`, async () => {
          const r = await http('GET', `${n.url}/v1/lag`);
          const inDigests = r.body.digests.nodes.some((x: { node: string }) => x.node === d!.id);
          const inReplicas = r.body.replicas.some((x: { node: string }) => x.node === d!.id);
          return inDigests && inReplicas && r.body.digests.agree === true ? true : undefined;
        });
      }
      expect(fs.readFileSync(a.logFile, 'utf8')).toContain('"event":"peer_learned"');
    } finally {
      await d?.stop();
      await stopAll();
    }
  }, 600_000);
});
