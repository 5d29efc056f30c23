import type { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CliIo } from '../cli/io.js';
import { findFreeBasePort, LocalCluster, portFree } from '../cluster/local-cluster.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ensureTopic } from '../log/topic.js';
import { spawnNode, waitNodeReady } from '../node/spawn.js';
import { type ApplyRate, measureApplyRate } from './apply.js';

interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  total: number;
}

/**
 * `lagoon bench` (= `npm run bench`): starts its own 3-broker cluster and 3 nodes on free loopback
 * ports, then measures, in one run and on the same cluster:
 *  - Kafka's own ProducerPerformance (acks=all, same record size) as the baseline;
 *  - REST write throughput at saturation (many concurrent connections to one node);
 *  - REST write latency at a fixed moderate rate;
 *  - eventual and strong read throughput.
 * Writes JSON and Markdown reports to bench-results/. Options: --duration S (default 15), --connections N (256), --rate R (300).
 */
export async function benchCommand(args: string[], io: CliIo): Promise<number> {
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
  };
  if (args[0] === 'outage') {
    const { outageCommand } = await import('./outage.js');
    return outageCommand(args.slice(1), io);
  }
  if (args[0] === 'apply') {
    const r = measureApplyRate({ records: opt('records', 200_000) });
    io.out(applyLine(r));
    return 0;
  }
  const duration = opt('duration', 15);
  const connections = opt('connections', 256);
  const rate = opt('rate', 300);
  // autocannon's typings do not model setupRequest returning a partial request; its runtime does.
  const autocannon = (await import('autocannon')).default as unknown as (
    o: Record<string, unknown>,
  ) => Promise<AcResult>;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-bench-'));
  const cluster = LocalCluster.open({
    dataDir,
    brokers: 3,
    basePort: await findFreeBasePort(3),
    progress: (l) => io.err(l),
  });
  const children: ReturnType<typeof spawn>[] = [];
  try {
    await cluster.start({ owner: process.pid });
    const brokers = cluster.bootstrap.join(',');
    const admin = kafkaClient({ brokers: cluster.bootstrap, clientId: 'bench' }).admin();
    await admin.connect();
    await ensureTopic(admin, {
      topic: 'lagoon.kv',
      partitions: 6,
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    await ensureTopic(admin, {
      topic: 'bench.kafka',
      partitions: 6,
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    await admin.disconnect();

    const ports: number[] = [];
    for (let p = 38081; ports.length < 3 && p < 39000; p++) if (await portFree(p)) ports.push(p);
    for (let i = 0; i < 3; i++) {
      const child = spawnNode(
        {
          id: `bench-${i + 1}`,
          port: ports[i]!,
          brokers: cluster.bootstrap,
          db: path.join(dataDir, `n${i}`, 'lagoon.db'),
        },
        { logFile: path.join(dataDir, `n${i}`, 'node.log') },
      );
      children.push(child);
    }
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    for (const u of urls) await waitNodeReady(u, 90_000);

    const value = JSON.stringify({ user: 'u-123', score: 42, tags: ['a', 'b'], pad: 'x'.repeat(120) });
    const recordSize = Buffer.byteLength(
      JSON.stringify({ v: 1, op: 'put', value: JSON.parse(value), wid: 'bench-1-100000' }),
    );

    io.err(`Kafka ProducerPerformance baseline (acks=all, ${recordSize}-byte records)…`);
    const kafkaOut = await cluster.tool(
      'org.apache.kafka.tools.ProducerPerformance',
      [
        '--topic',
        'bench.kafka',
        '--num-records',
        '200000',
        '--record-size',
        String(recordSize),
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${brokers}`,
        'acks=all',
        'linger.ms=5',
      ],
      300_000,
    );
    const kafkaLine = kafkaOut.trim().split('\n').pop() ?? '';
    const km =
      /([\d.]+) records\/sec .*?([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th/.exec(
        kafkaLine,
      );

    let seq = 0;
    const put = (url: string, extra: Record<string, unknown>) =>
      autocannon({
        url,
        duration,
        ...extra,
        requests: [
          {
            method: 'PUT',
            setupRequest: (req: Record<string, unknown>) => ({
              ...req,
              path: `/v1/kv/bench-${seq++ % 100_000}`,
              headers: { 'content-type': 'application/json' },
              body: value,
            }),
          },
        ],
      });
    io.err(`REST writes at saturation (${connections} connections, ${duration} s)…`);
    await put(urls[0]!, { connections: 32, duration: 3 }); // warm-up
    const sat = summarize(await put(urls[0]!, { connections }));
    io.err(`REST writes at a fixed ${rate} req/s…`);
    const fixed = summarize(await put(urls[0]!, { connections: 32, overallRate: rate }));
    io.err('Eventual reads…');
    const readPaths = (q: string) => ({
      requests: [
        {
          method: 'GET',
          setupRequest: (req: Record<string, unknown>) => ({
            ...req,
            path: `/v1/kv/bench-${seq++ % 5000}${q}`,
          }),
        },
      ],
    });
    const eventual = summarize(
      await autocannon({ url: urls[1]!, duration, connections: 64, ...readPaths('') }),
    );
    io.err('Strong reads…');
    const strong = summarize(
      await autocannon({ url: urls[2]!, duration, connections: 64, ...readPaths('?consistency=strong') }),
    );

    io.err('Replica apply rate vs raw better-sqlite3…');
    const apply = measureApplyRate();

    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      kafka: '4.1.1 (3 brokers, RF 3, min ISR 2, on the same machine)',
    };
    const result = {
      at: new Date().toISOString(),
      machine,
      method:
        'Everything on one machine: 3 Kafka JVMs, 3 Lagoon node processes (each also applying every write into its SQLite replica) and the load generator (autocannon) share the cores. Values are ~170-byte JSON objects; keys cycle over 100k.',
      kafkaProducerPerformance: km
        ? {
            recordsPerSec: Number(km[1]),
            avgMs: Number(km[2]),
            p50Ms: Number(km[4]),
            p95Ms: Number(km[5]),
            p99Ms: Number(km[6]),
            recordSize,
            raw: kafkaLine,
          }
        : { raw: kafkaLine },
      restWriteSaturation: { connections, durationS: duration, ...sat },
      restWriteFixedRate: { targetPerSec: rate, durationS: duration, ...fixed },
      restReadEventual: eventual,
      restReadStrong: strong,
      apply_rate: { ours: apply.oursPerSec, anchor: apply.anchorPerSec, unit: 'rows/s', ratio: apply.ratio },
      applyRounds: apply.rounds,
    };
    const outDir = path.resolve('bench-results');
    fs.mkdirSync(outDir, { recursive: true });
    const stamp = result.at.replace(/[:.]/g, '-');
    fs.writeFileSync(path.join(outDir, `bench-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    const md = [
      `# Lagoon benchmark ${result.at}`,
      '',
      `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}, Kafka ${machine.kafka}.`,
      '',
      result.method,
      '',
      '| What | Throughput | p50 | p99 | errors/non-2xx |',
      '|---|---|---|---|---|',
      `| Kafka ProducerPerformance (acks=all, ${recordSize} B) | ${km ? `${km[1]} rec/s` : '?'} | ${km ? `${km[4]} ms` : '?'} | ${km ? `${km[6]} ms` : '?'} | – |`,
      `| REST PUT, saturation (${connections} conns) | ${sat.requestsPerSec} req/s | ${sat.p50Ms} ms | ${sat.p99Ms} ms | ${sat.errors}/${sat.non2xx} |`,
      `| REST PUT, fixed ${rate} req/s | ${fixed.requestsPerSec} req/s | ${fixed.p50Ms} ms | ${fixed.p99Ms} ms | ${fixed.errors}/${fixed.non2xx} |`,
      `| REST GET eventual (64 conns) | ${eventual.requestsPerSec} req/s | ${eventual.p50Ms} ms | ${eventual.p99Ms} ms | ${eventual.errors}/${eventual.non2xx} |`,
      `| REST GET strong (64 conns) | ${strong.requestsPerSec} req/s | ${strong.p50Ms} ms | ${strong.p99Ms} ms | ${strong.errors}/${strong.non2xx} |`,
      '',
      applyLine(apply),
      '',
    ].join('\n');
    fs.writeFileSync(path.join(outDir, `bench-${stamp}.md`), md);
    io.out(md);
    return 0;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    await cluster.stop(5000);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function applyLine(r: ApplyRate): string {
  return (
    `Replica apply rate (${r.records} records, batches of ${r.batch}, WAL + synchronous=FULL, median of 3): ` +
    `Lagoon ${r.oursPerSec} rows/s, raw better-sqlite3 upsert ${r.anchorPerSec} rows/s, ratio ${r.ratio}`
  );
}

interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p90: number; p99: number };
  non2xx: number;
  errors: number;
}

function summarize(r: AcResult): LoadResult {
  return {
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    total: r.requests.total,
  };
}
