import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ChaosEnv } from '../chaos/env.js';
import { portFree } from '../cluster/local-cluster.js';
import { partitionOf } from '../core/partitioner.js';
import { encodeKey, encodeRecord } from '../core/record.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ensureTopic } from '../log/topic.js';
import { Writer, writerClient } from '../log/writer.js';
import { LAGOON_BIN, spawnNode } from '../node/spawn.js';
import type { LogRecord } from '../store/replica-store.js';
import { rawUpsertSeconds } from './apply.js';
import {
  type Answer,
  closedLoop,
  latencyHistogram,
  openLoop,
  type RequestSpec,
  summarizeHistogram,
} from './load.js';
import { cpuMsOfAll, peakRssMiB } from './proc.js';

/**
 * The measurements of `lagoon bench`, each one window on a running environment (its own cluster and nodes).
 * Every function returns plain numbers; the A/B/A alternation and the medians are in report.ts.
 */

/** ~200-byte JSON values, as the figures are stated for. */
export const BENCH_VALUE = JSON.stringify({
  user: 'u-123',
  score: 42,
  tags: ['a', 'b'],
  pad: 'x'.repeat(120),
});

/** The bytes of one Lagoon log record carrying BENCH_VALUE: the anchors use records of this size. */
export function recordSize(): number {
  return encodeRecord({ v: 1, op: 'put', value: JSON.parse(BENCH_VALUE), wid: 'bench-1-100000' }).length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first free loopback port at or above `from`. */
async function freePortFrom(from: number): Promise<number> {
  for (let p = from; p < from + 1000; p++) if (await portFree(p)) return p;
  throw new Error(`no free loopback port in ${from}..${from + 999}`);
}

export const putSpec = (keys: number, prefix = 'bench'): RequestSpec => ({
  method: 'PUT',
  path: (n) => `/v1/kv/${prefix}-${n % keys}`,
  body: BENCH_VALUE,
});

export const getSpec = (keys: number, query = '', headers?: Record<string, string>): RequestSpec => ({
  method: 'GET',
  path: (n) => `/v1/kv/bench-${n % keys}${query}`,
  ...(headers ? { headers } : {}),
});

/** A started fastify no-op server process (the HTTP anchor). */
export interface NoopServer {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

export async function startNoopServer(): Promise<NoopServer> {
  const port = await freePortFrom(38_500);
  const child: ChildProcess = spawn(process.execPath, [LAGOON_BIN, 'bench', 'noop', '--port', String(port)], {
    stdio: 'ignore',
    env: { ...process.env, LAGOON_OWNER_PID: String(process.pid) },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/v1/kv/x`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error('the no-op anchor server did not start');
    await sleep(200);
  }
  return {
    url,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** Node pids of the environment's running nodes. */
export function nodePids(env: ChaosEnv): number[] {
  return env.nodes.map((n) => n.pid?.()).filter((p): p is number => p !== undefined);
}

/** One closed-loop PUT window on a Lagoon node; also the nodes' CPU per acknowledged write. */
export async function restPutWindow(
  env: ChaosEnv,
  opts: { connections: number; durationS: number; keys: number },
): Promise<{ perSec: number; cpuUsPerWrite: number; non2xx: number; errors: number; p99Ms: number }> {
  const pids = nodePids(env);
  const cpu0 = cpuMsOfAll(pids);
  const r = await closedLoop(env.nodes[0]!.url, putSpec(opts.keys), opts);
  const cpuMs = cpuMsOfAll(pids) - cpu0;
  return {
    perSec: r.requestsPerSec,
    cpuUsPerWrite: r.ok > 0 ? Math.round((cpuMs * 1000) / r.ok) : Number.NaN,
    non2xx: r.non2xx,
    errors: r.errors,
    p99Ms: r.p99Ms,
  };
}

/** Waits until every node's replica has applied everything in the log (no window starts with a backlog). */
export async function waitCaughtUp(env: ChaosEnv, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: string | undefined;
  for (;;) {
    let behind = 0;
    for (const n of env.nodes) {
      try {
        const r = await fetch(`${n.url}/v1/status`, { signal: AbortSignal.timeout(5000) });
        const body = (await r.json()) as {
          partitions: Array<{ appliedOffset: number; endOffset: number }>;
        };
        for (const p of body.partitions) behind += Math.max(0, p.endOffset - p.appliedOffset);
      } catch (e) {
        behind += 1;
        lastError = `${n.id}: ${(e as Error).message}`;
      }
    }
    if (behind === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `replicas still ${behind} records behind after ${timeoutMs} ms (${lastError ?? 'no error'})`,
      );
    }
    await sleep(500);
  }
}

/**
 * Lagoon's producer path alone: the node's Writer (per-partition idempotent producers, acks=all,
 * coalescing) in this process, `inFlight` appends outstanding at all times, for `durationS`.
 */
export async function writerWindow(
  env: ChaosEnv,
  opts: { topic: string; partitions: number; durationS: number; inFlight: number; lingerMs: number },
): Promise<number> {
  const kafka = kafkaClient({ brokers: env.bootstrap, clientId: 'bench-writer' }, writerClient());
  const writer = new Writer(kafka, { topic: opts.topic, lingerMs: opts.lingerMs });
  writer.start();
  const value = encodeRecord({ v: 1, op: 'put', value: JSON.parse(BENCH_VALUE), wid: 'bench-1-100000' });
  let n = 0;
  let acked = 0;
  let failed = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const key = `bench-${n++ % 100_000}`;
      try {
        await writer.append(encodeKey(key), value, partitionOf(key, opts.partitions), 10_000);
        acked++;
      } catch {
        failed++;
      }
    }
  };
  // A warm-up second (producers connect, metadata loads), then the measured window.
  const workers = Array.from({ length: opts.inFlight }, worker);
  await sleep(2000);
  const a0 = acked;
  const t0 = performance.now();
  await sleep(opts.durationS * 1000);
  const perSec = ((acked - a0) * 1000) / (performance.now() - t0);
  stop = true;
  await Promise.all(workers);
  await writer.close();
  if (failed > 0) throw new Error(`${failed} writer appends failed during the producer-path window`);
  return Math.round(perSec);
}

/** Kafka's ProducerPerformance: records/s, and its JVM's CPU ms (exact, via bash `times`). */
export async function producerPerformance(
  env: ChaosEnv,
  opts: { topic: string; records: number; recordSize: number },
): Promise<{ perSec: number; cpuMs: number; line: string }> {
  const { out, cpuMs } = await env.cluster.toolTimed(
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic',
      opts.topic,
      '--num-records',
      String(opts.records),
      '--record-size',
      String(opts.recordSize),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${env.bootstrap.join(',')}`,
      'acks=all',
      'linger.ms=5',
    ],
    600_000,
  );
  const line = out.trim().split('\n').pop() ?? '';
  const m = /([\d.]+) records\/sec/.exec(line);
  if (!m) throw new Error(`ProducerPerformance printed no summary: ${line}`);
  return { perSec: Math.round(Number(m[1])), cpuMs, line };
}

/** Kafka's ConsumerPerformance reading `records` from the topic's start: its JVM's CPU ms. */
export async function consumerPerformance(
  env: ChaosEnv,
  opts: { topic: string; records: number },
): Promise<{ cpuMs: number; out: string }> {
  const { out, cpuMs } = await env.cluster.toolTimed(
    'org.apache.kafka.tools.ConsumerPerformance',
    [
      '--bootstrap-server',
      env.bootstrap.join(','),
      '--topic',
      opts.topic,
      '--messages',
      String(opts.records),
      '--timeout',
      '120000',
    ],
    600_000,
  );
  return { cpuMs, out };
}

/** Kafka's EndToEndLatency (produce one, consume it, repeat) on a topic of the cluster: p99 ms. */
export async function endToEndLatency(
  env: ChaosEnv,
  opts: { topic: string; records: number; recordSize: number },
): Promise<{ p50Ms: number; p99Ms: number; line: string }> {
  const { out } = await env.cluster.toolTimed(
    'org.apache.kafka.tools.EndToEndLatency',
    [env.bootstrap.join(','), opts.topic, String(opts.records), 'all', String(opts.recordSize)],
    600_000,
  );
  const m = /Percentiles: 50th = ([\d.]+), 99th = ([\d.]+)/.exec(out);
  if (!m) throw new Error(`EndToEndLatency printed no percentiles: ${out.slice(-500)}`);
  return { p50Ms: Number(m[1]), p99Ms: Number(m[2]), line: m[0] };
}

/**
 * Write → visible on a replica, open loop at `ratePerSec` through the first node: a write is visible once
 * `watchUrl` (another node) reports its offset applied in /v1/status, polled back to back (~1–3 ms apart:
 * the store's SQLite file is the node's alone, locked exclusively); latency runs from the write's intended
 * send time.
 */
export async function e2eWindow(
  env: ChaosEnv,
  opts: { ratePerSec: number; durationS: number; keys: number; watchUrl: string },
): Promise<{ p50Ms: number; p99Ms: number; ok: number; failed: number; unseen: number }> {
  const hist = latencyHistogram();
  const waiting = new Map<number, Array<{ offset: number; intendedAt: number }>>();
  const seen = (rows: Array<{ partition: number; appliedOffset: number }>, now: number) => {
    for (const row of rows) {
      const q = waiting.get(row.partition);
      if (!q) continue;
      // Acks of one partition arrive in offset order almost always; scan all to be exact.
      let kept = 0;
      for (const w of q) {
        if (w.offset < row.appliedOffset)
          hist.recordValue(Math.max(1, Math.round((now - w.intendedAt) * 1000)));
        else q[kept++] = w;
      }
      q.length = kept;
      if (kept === 0) waiting.delete(row.partition);
    }
  };
  let polling = true;
  const poller = (async () => {
    while (polling) {
      if (waiting.size === 0) {
        await sleep(1);
        continue;
      }
      try {
        const r = await fetch(`${opts.watchUrl}/v1/status`, { signal: AbortSignal.timeout(5000) });
        // The answer's arrival is when the offsets were known visible (they were read just before it was sent).
        const now = performance.now();
        const body = (await r.json()) as { partitions: Array<{ partition: number; appliedOffset: number }> };
        seen(body.partitions, now);
      } catch {
        await sleep(10);
      }
    }
  })();
  const onAnswer = (a: Answer) => {
    if (a.status >= 200 && a.status < 300) {
      const body = JSON.parse(a.body) as { partition: number; offset: number };
      let q = waiting.get(body.partition);
      if (!q) {
        q = [];
        waiting.set(body.partition, q);
      }
      q.push({ offset: body.offset, intendedAt: a.intendedAt });
    }
    return false;
  };
  try {
    const r = await openLoop(env.nodes[0]!.url, putSpec(opts.keys, 'e2e'), {
      ratePerSec: opts.ratePerSec,
      durationS: opts.durationS,
      histogram: hist,
      onAnswer,
    });
    const deadline = Date.now() + 60_000;
    while (waiting.size > 0 && Date.now() < deadline) await sleep(10);
    const unseen = [...waiting.values()].reduce((a, q) => a + q.length, 0);
    return { ...summarizeHistogram(hist), ok: r.ok, failed: r.failed, unseen };
  } finally {
    polling = false;
    await poller;
  }
}

/** Records written to the log per second while nobody writes (heartbeats and the like), per partition. */
export async function idleWindow(env: ChaosEnv, durationS: number): Promise<number> {
  const admin = kafkaClient({ brokers: env.bootstrap, clientId: 'bench-idle' }).admin();
  await admin.connect();
  try {
    const sum = async () =>
      (await admin.fetchTopicOffsets(env.topic)).reduce((a, p) => a + Number(p.high), 0);
    const s0 = await sum();
    const t0 = performance.now();
    await sleep(durationS * 1000);
    const s1 = await sum();
    return (s1 - s0) / ((performance.now() - t0) / 1000) / env.partitions;
  } finally {
    await admin.disconnect();
  }
}

/** Writes `records` Lagoon put records over as many distinct keys straight into `topic` (a backlog to drain). */
export async function produceBacklog(
  env: ChaosEnv,
  opts: { topic: string; partitions: number; records: number },
): Promise<void> {
  const kafka = kafkaClient({ brokers: env.bootstrap, clientId: 'bench-backlog' });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopic(admin, {
    topic: opts.topic,
    partitions: opts.partitions,
    replicationFactor: Math.min(3, env.cluster.layout.brokers.length),
    minInsyncReplicas: Math.min(2, env.cluster.layout.brokers.length),
  });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const value = JSON.parse(BENCH_VALUE) as unknown;
    const chunk = 5000;
    const inFlight: Array<Promise<unknown>> = [];
    for (let i = 0; i < opts.records; i += chunk) {
      const byPartition = new Map<number, Array<{ key: Buffer; value: Buffer; partition: number }>>();
      for (let j = i; j < Math.min(opts.records, i + chunk); j++) {
        const key = `rebuild-${j}`;
        const p = partitionOf(key, opts.partitions);
        let list = byPartition.get(p);
        if (!list) {
          list = [];
          byPartition.set(p, list);
        }
        list.push({
          key: encodeKey(key),
          value: encodeRecord({ v: 1, op: 'put', value, wid: `b-${j}` }),
          partition: p,
        });
      }
      inFlight.push(
        producer.sendBatch({
          acks: -1,
          topicMessages: [{ topic: opts.topic, messages: [...byPartition.values()].flat() }],
        }),
      );
      if (inFlight.length >= 4) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
}

/**
 * One replica draining the backlog: a new node on `topic` with an empty SQLite file, timed from spawn to
 * every partition applied to its end. Rows/s counts from the first applied record (start-up excluded);
 * also the whole rebuild time and the node's peak RSS.
 */
export async function drainWindow(
  env: ChaosEnv,
  opts: { topic: string; partitions: number; records: number; dataDir: string },
): Promise<{ rowsPerSec: number; rebuildS: number; peakRssMiB: number | undefined }> {
  const port = await freePortFrom(39_600);
  const dir = path.join(opts.dataDir, `rebuild-${Date.now()}`);
  fs.mkdirSync(dir, { recursive: true });
  const db = path.join(dir, 'lagoon.db');
  const t0 = performance.now();
  const child = spawnNode(
    { id: 'bench-rebuild', port, brokers: env.bootstrap, db, topic: opts.topic, partitions: opts.partitions },
    {
      logFile: path.join(dir, 'node.log'),
      env: {
        LAGOON_REPLICATION_FACTOR: String(Math.min(3, env.cluster.layout.brokers.length)),
        LAGOON_MIN_INSYNC_REPLICAS: String(Math.min(2, env.cluster.layout.brokers.length)),
      },
    },
  );
  let peak: number | undefined;
  try {
    // Not /readyz: a node with an empty store is ready only once it has caught up, i.e. after the drain. Its
    // status answers from the moment it listens; the rate is taken from the first record applied to the last.
    const deadline = Date.now() + 600_000;
    let firstAt: number | undefined;
    let firstApplied = 0;
    let lastApplied = 0;
    for (;;) {
      if (child.exitCode !== null) throw new Error('the rebuild node exited before it caught up');
      if (Date.now() > deadline) throw new Error('the rebuild node did not catch up within 10 minutes');
      const body = await fetch(`http://127.0.0.1:${port}/v1/status`, { signal: AbortSignal.timeout(5000) })
        .then((r) => (r.ok ? r.json() : undefined))
        .catch(() => undefined); // not listening yet
      const parts = (body as { partitions?: Array<{ appliedOffset: number; endOffset: number }> } | undefined)
        ?.partitions;
      if (parts === undefined || parts.length === 0) {
        await sleep(100);
        continue;
      }
      const applied = parts.reduce((a, p) => a + p.appliedOffset, 0);
      if (applied > 0 && firstAt === undefined) {
        // Rows counted from here on only: what was applied before this poll took time not measured.
        firstAt = performance.now();
        firstApplied = applied;
      }
      lastApplied = applied;
      if (child.pid) peak = Math.max(peak ?? 0, peakRssMiB(child.pid) ?? 0);
      // Done when every partition reached its end and the backlog is all in (heartbeats may add a few).
      if (applied >= opts.records && parts.every((p) => p.appliedOffset >= p.endOffset)) break;
      await sleep(100);
    }
    const end = performance.now();
    return {
      rowsPerSec: Math.round((lastApplied - firstApplied) / ((end - (firstAt ?? t0)) / 1000)),
      rebuildS: Math.round((end - t0) / 100) / 10,
      peakRssMiB: peak,
    };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
}

/**
 * The apply anchor: raw better-sqlite3 upserts (apply.ts) of the same `records` puts as the backlog (same keys
 * and values), batches of `batch`, one transaction each, the replica's WAL + synchronous=FULL. Rows/s.
 */
export function rawUpsertRate(dir: string, records: number, batch = 500): number {
  const value = JSON.parse(BENCH_VALUE) as unknown;
  const recs: LogRecord[] = [];
  for (let j = 0; j < records; j++) {
    recs.push({
      offset: j,
      timestamp: 1_700_000_000_000 + j,
      key: encodeKey(`rebuild-${j}`),
      value: encodeRecord({ v: 1, op: 'put', value, wid: `b-${j}` }),
    });
  }
  return Math.round(records / rawUpsertSeconds(dir, recs, batch));
}
