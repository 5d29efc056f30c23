import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChaosEnv, startOwnEnv } from '../chaos/env.js';
import type { CliIo } from '../cli/io.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ensureTopic } from '../log/topic.js';
import { LAGOON_BIN } from '../node/spawn.js';
import { measureApplyRate } from './apply.js';
import {
  BENCH_VALUE,
  consumerPerformance,
  drainWindow,
  e2eWindow,
  endToEndLatency,
  getSpec,
  idleWindow,
  produceBacklog,
  producerPerformance,
  putSpec,
  rawUpsertRate,
  recordSize,
  restPutWindow,
  startNoopServer,
  waitCaughtUp,
  writerWindow,
} from './figures.js';
import { closedLoop, openLoop } from './load.js';
import { peakRssMiB } from './proc.js';
import { summarizeProfiles } from './profile.js';
import { alternate, FIGURES, type Figure, figure, markdownTable } from './report.js';
import { BENCH_USAGE, checkBenchArgs } from './usage.js';

/** How long and how often: `--quick` (under 10 minutes) or the full run (with the light configuration too). */
export interface BenchPlan {
  /**
   * Load before the first window: fresh broker JVMs spend their first minutes compiling (JIT), which made
   * early windows 2x slower than later ones in the same run.
   */
  warmupS: number;
  windowS: number;
  /** Rounds of ours per figure; the anchor runs pairs + 1 times around them (A/B/A…). */
  pairs: number;
  /** Closed-loop connections of the write figures (both sides), and of the read figures. */
  connections: number;
  readConnections: number;
  keys: number;
  backlog: number;
  idleS: number;
  e2eRecords: number;
}

export const QUICK: BenchPlan = {
  warmupS: 40,
  windowS: 6,
  pairs: 1,
  connections: 256,
  readConnections: 64,
  keys: 20_000,
  backlog: 200_000,
  idleS: 15,
  e2eRecords: 1000,
};
export const FULL: BenchPlan = {
  warmupS: 90,
  windowS: 15,
  pairs: 2,
  connections: 256,
  readConnections: 64,
  keys: 50_000,
  backlog: 1_000_000,
  idleS: 30,
  e2eRecords: 3000,
};

/** One configuration's measurements: the figures (issue #9's names) and the extra figures. */
export interface ConfigResult {
  config: { brokers: number; nodes: number; partitions: number; replicationFactor: number };
  figures: Record<string, Figure>;
  extra: Record<string, unknown>;
}

/** The repository root (bin/lagoon.js's parent). */
const LAGOON_ROOT = path.resolve(path.dirname(LAGOON_BIN), '..');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `lagoon bench` (= `npm run bench`): starts its own cluster and nodes on loopback, measures every figure
 * side by side with its anchor in the same run (A/B/A…, medians), prints the table, writes the results JSON
 * under bench-results/ and prints its path as the last line. `--quick` for a run under 10 minutes;
 * `--profile` also records the nodes' CPU profiles (--cpu-prof) and summarizes them.
 * Sub-commands: `bench apply` (store-level apply rate only), `bench outage`, `bench noop` (the anchor server).
 */
export async function benchCommand(args: string[], io: CliIo): Promise<number> {
  if (checkBenchArgs(args) === 'help') {
    io.out(BENCH_USAGE);
    return 0;
  }
  const flag = (name: string) => args.includes(`--${name}`);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args[0] === 'outage') {
    const { outageCommand } = await import('./outage.js');
    return outageCommand(args.slice(1), io);
  }
  if (args[0] === 'soak') {
    const { soakCommand } = await import('./soak.js');
    return soakCommand(args.slice(1), io);
  }
  if (args[0] === 'noop') {
    const { runNoopServer } = await import('./noop-server.js');
    await runNoopServer(Number(opt('port') ?? 38_500));
    await new Promise(() => {}); // serves until SIGTERM
  }
  if (args[0] === 'rebuild') {
    const { measureRebuild } = await import('./rebuild.js');
    const r = await measureRebuild({ keys: Number(opt('keys') ?? 1_000_000) });
    io.out(
      `Rebuilding a replica of ${r.keys} keys (${r.partitions} partitions): from the log alone ${r.fromLogS} s; ` +
        `from a snapshot ${r.fromSnapshotS} s (receive + verify ${r.receiveVerifyS} s, install ${r.installS} s, ` +
        `tail of ${r.tailRecords} records ${r.tailS} s); taking the snapshot ${r.snapshotS} s, ${r.snapshotBytes} bytes`,
    );
    io.out(JSON.stringify(r));
    return 0;
  }
  if (args[0] === 'apply') {
    const r = measureApplyRate({ records: Number(opt('records') ?? 200_000) });
    io.out(
      `Store-level apply (${r.records} records, batches of ${r.batch}): Lagoon ${r.oursPerSec} rows/s, raw better-sqlite3 ${r.anchorPerSec} rows/s, ratio ${r.ratio}`,
    );
    return 0;
  }
  const plan = { ...(flag('quick') ? QUICK : FULL) };
  if (opt('window')) plan.windowS = Number(opt('window'));
  const light = !flag('quick') && !flag('no-light');
  const profileDir = flag('profile')
    ? path.resolve(opt('profile-dir') ?? 'bench-results/profiles')
    : undefined;
  const started = Date.now();
  const machine = machineFacts();
  io.err(
    `Machine: ${machine.cores} × ${machine.cpuModel}, Node ${machine.node}, ${machine.java}, Kafka ${machine.kafka}`,
  );

  const main = await measureConfig({ brokers: 3, nodes: 3 }, plan, io, profileDir);
  const lightResult = light
    ? await measureConfig(
        { brokers: 1, nodes: 1 },
        {
          ...plan,
          windowS: Math.max(5, Math.round(plan.windowS * 0.66)),
          pairs: 1,
          backlog: 200_000,
          warmupS: 40,
        },
        io,
        undefined,
      )
    : undefined;

  const result = {
    at: new Date(started).toISOString(),
    durationS: Math.round((Date.now() - started) / 1000),
    mode: flag('quick') ? 'quick' : 'full',
    machine,
    method: METHOD,
    plan,
    ...main.figures,
    config: main.config,
    extra: main.extra,
    ...(lightResult ? { light: lightResult } : {}),
  };
  const outDir = path.resolve(opt('out') ?? 'bench-results');
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = result.at.replace(/[:.]/g, '-');
  const jsonPath = path.join(outDir, `bench-${stamp}.json`);
  fs.writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    `# Lagoon benchmark ${result.at} (${result.mode}, ${result.durationS} s)`,
    '',
    `Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}, ${machine.java}, Kafka ${machine.kafka}.`,
    '',
    `## 3 brokers + 3 nodes (RF 3, min ISR 2, ${main.config.partitions} partitions)`,
    '',
    markdownTable(main.figures),
    '',
    extraLines(main.extra),
    ...(lightResult
      ? [
          '',
          '## Light: 1 broker + 1 node (RF 1)',
          '',
          markdownTable(lightResult.figures),
          '',
          extraLines(lightResult.extra),
        ]
      : []),
    '',
  ].join('\n');
  fs.writeFileSync(jsonPath.replace(/\.json$/, '.md'), md);
  io.out(md);
  io.out(jsonPath);
  return 0;
}

const METHOD = [
  'Everything runs on this one machine over loopback: the Kafka JVMs, the Lagoon node processes (each also applying',
  'every write into its own SQLite replica), the anchors and the load generators share its cores.',
  'Each figure alternates anchor and ours (A/B/A, or A/B/A/B/A in a full run) after a warm-up and reports the',
  'median of each side and ours/anchor. Closed-loop throughput: autocannon, same connections and duration for',
  'ours and the anchor. Latency: open loop at a fixed offered rate, measured from each request’s intended send',
  'time into an HDR histogram (no coordinated omission). Replicas are caught up before each window; no node',
  'joins or leaves a consumer group inside a window. Values are ~200-byte JSON objects.',
].join(' ');

function extraLines(extra: Record<string, unknown>): string {
  return Object.entries(extra)
    .map(([k, v]) => `- ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}

function machineFacts() {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const pom = fs.readFileSync(path.join(LAGOON_ROOT, 'infra/kafka/broker/pom.xml'), 'utf8');
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    java: (java.stderr || java.stdout || 'java ?').trim().split('\n')[0] ?? 'java ?',
    kafka: /<kafka\.version>([^<]+)</.exec(pom)?.[1] ?? '?',
    platform: `${os.type()} ${os.release()}`,
  };
}

async function createTopic(env: ChaosEnv, topic: string, partitions: number): Promise<void> {
  const brokers = env.cluster.layout.brokers.length;
  const admin = kafkaClient({ brokers: env.bootstrap, clientId: 'bench-admin' }).admin();
  await admin.connect();
  try {
    await ensureTopic(admin, {
      topic,
      partitions,
      replicationFactor: Math.min(3, brokers),
      minInsyncReplicas: Math.min(2, brokers),
    });
  } finally {
    await admin.disconnect();
  }
}

/** Every figure on one configuration (its own cluster and nodes, stopped afterwards). */
async function measureConfig(
  shape: { brokers: number; nodes: number },
  plan: BenchPlan,
  io: CliIo,
  profileDir: string | undefined,
): Promise<ConfigResult> {
  const label = `${shape.brokers}b/${shape.nodes}n`;
  const step = (s: string) => io.err(`[${label}] ${s}`);
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const env = await startOwnEnv({
    proxied: false,
    brokers: shape.brokers,
    nodes: shape.nodes,
    progress: step,
    nodeExecArgv: profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  });
  const rf = Math.min(3, shape.brokers);
  const figures: Record<string, Figure> = {};
  const extra: Record<string, unknown> = {};
  const spec = (name: string) => FIGURES.find((f) => f.name === name)!;
  const noop = await startNoopServer();
  const size = recordSize();
  const w = plan.windowS;
  try {
    // The last node serves reads and watches visibility (another node than the writer when there is one).
    const reader = env.nodes[env.nodes.length - 1]!;
    await createTopic(env, 'bench.kafka', env.partitions);
    await createTopic(env, 'bench.writer', env.partitions);
    await createTopic(env, 'bench.e2e', 1);

    step(
      `warm-up: ${plan.warmupS} s of REST PUTs (the broker JVMs compile their hot paths), the no-op server`,
    );
    await closedLoop(env.nodes[0]!.url, putSpec(plan.keys), {
      connections: plan.connections,
      durationS: plan.warmupS,
    });
    await closedLoop(noop.url, putSpec(plan.keys), { connections: plan.connections, durationS: 2 });
    await waitCaughtUp(env);

    step(`write_throughput: fastify no-op PUT vs REST PUT, ${plan.connections} connections, ${w} s windows`);
    const cpuRounds: number[] = [];
    const putErrors: Array<{ non2xx: number; errors: number; p99Ms: number }> = [];
    const wt = await alternate(
      plan.pairs,
      async () =>
        (await closedLoop(noop.url, putSpec(plan.keys), { connections: plan.connections, durationS: w }))
          .requestsPerSec,
      async () => {
        await waitCaughtUp(env);
        const r = await restPutWindow(env, { connections: plan.connections, durationS: w, keys: plan.keys });
        cpuRounds.push(r.cpuUsPerWrite);
        putErrors.push({ non2xx: r.non2xx, errors: r.errors, p99Ms: r.p99Ms });
        return r.perSec;
      },
    );
    figures.write_throughput = figure(spec('write_throughput'), wt);
    extra.rest_put_windows = putErrors;
    await waitCaughtUp(env);

    const ppRecords = Math.max(50_000, w * 8000);
    step(
      `producer_throughput: Kafka ProducerPerformance (${ppRecords} × ${size} B, acks=all) vs Lagoon's Writer`,
    );
    const ppCpu: number[] = [];
    const pt = await alternate(
      plan.pairs,
      async () => {
        const r = await producerPerformance(env, {
          topic: 'bench.kafka',
          records: ppRecords,
          recordSize: size,
        });
        ppCpu.push(r.cpuMs);
        return r.perSec;
      },
      () =>
        writerWindow(env, {
          topic: 'bench.writer',
          partitions: env.partitions,
          durationS: w,
          inFlight: 1024,
          lingerMs: 2,
        }),
    );
    figures.producer_throughput = figure(spec('producer_throughput'), pt);
    figures.rest_vs_producer = figure(
      {
        ...spec('rest_vs_producer'),
        note: 'ours: write_throughput’s REST rounds; anchor: producer_throughput’s ProducerPerformance rounds',
      },
      { ours: wt.ours, anchor: pt.anchor },
    );

    step('cpu_per_write anchor: ConsumerPerformance over the same records, JVM start-up subtracted');
    const ppBase = await producerPerformance(env, { topic: 'bench.kafka', records: 1, recordSize: size });
    const consumed = ppRecords * (plan.pairs + 1) + 1;
    const cp = await consumerPerformance(env, { topic: 'bench.kafka', records: consumed });
    const cpBase = await consumerPerformance(env, { topic: 'bench.kafka', records: 1 });
    const ppPerRecord = ppCpu.map((c) => ((c - ppBase.cpuMs) * 1000) / ppRecords);
    const cpPerRecord = ((cp.cpuMs - cpBase.cpuMs) * 1000) / consumed;
    figures.cpu_per_write = figure(
      {
        ...spec('cpu_per_write'),
        note: `ours: CPU of all ${shape.nodes} node processes (HTTP, producer, ${shape.nodes} replicas applying) per acknowledged REST write; anchor: ProducerPerformance + ConsumerPerformance CPU per record, their JVM start-up (a 1-record run) subtracted`,
      },
      { ours: cpuRounds, anchor: ppPerRecord.map((p) => Math.round(p + cpPerRecord)) },
    );
    await waitCaughtUp(env);

    const e2eRate = Math.max(10, Math.round((figures.write_throughput.ours ?? 100) / 2));
    step(
      `e2e_lag_p99: Kafka EndToEndLatency (${plan.e2eRecords} records) vs write → visible on ${reader.id} at ${e2eRate} req/s`,
    );
    const e2eExtra: unknown[] = [];
    const e2e = await alternate(
      plan.pairs,
      async () =>
        (await endToEndLatency(env, { topic: 'bench.e2e', records: plan.e2eRecords, recordSize: size }))
          .p99Ms,
      async () => {
        await waitCaughtUp(env);
        const r = await e2eWindow(env, {
          ratePerSec: e2eRate,
          durationS: w,
          keys: plan.keys,
          watchUrl: reader.url,
        });
        e2eExtra.push(r);
        return r.p99Ms;
      },
    );
    figures.e2e_lag_p99 = figure(
      { ...spec('e2e_lag_p99'), note: `open loop at ${e2eRate} req/s (50% of write_throughput)` },
      e2e,
    );
    extra.e2e_windows = e2eExtra;
    await waitCaughtUp(env);

    // Reads hit keys that exist: the first READ_KEYS keys are written once more, through the API.
    await openLoop(env.nodes[0]!.url, putSpec(READ_KEYS), { ratePerSec: 200, durationS: READ_KEYS / 200 });
    await waitCaughtUp(env);
    step(`read_eventual_throughput: fastify no-op GET vs REST GET eventual on ${reader.id}`);
    const rt = await alternate(
      plan.pairs,
      async () =>
        (await closedLoop(noop.url, getSpec(READ_KEYS), { connections: plan.readConnections, durationS: w }))
          .requestsPerSec,
      async () =>
        (
          await closedLoop(reader.url, getSpec(READ_KEYS), {
            connections: plan.readConnections,
            durationS: w,
          })
        ).requestsPerSec,
    );
    figures.read_eventual_throughput = figure(spec('read_eventual_throughput'), rt);

    step('read levels: eventual, session and strong at a fixed rate (open loop)');
    const sessionToken = await (async () => {
      const r = await fetch(`${env.nodes[0]!.url}/v1/kv/bench-0`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: BENCH_VALUE,
      });
      return r.headers.get('lagoon-session') ?? '';
    })();
    const readRate = 200;
    const levels: Record<string, { p50Ms: number; p99Ms: number; failed: number }> = {};
    for (const [level, q, headers] of [
      ['eventual', '', undefined],
      ['session', '?consistency=session', { 'lagoon-session': sessionToken }],
      ['strong', '?consistency=strong', undefined],
    ] as const) {
      const r = await openLoop(reader.url, getSpec(READ_KEYS, q, headers), {
        ratePerSec: readRate,
        durationS: w,
      });
      levels[level] = { p50Ms: r.p50Ms, p99Ms: r.p99Ms, failed: r.failed };
    }
    extra.read_levels = {
      ratePerSec: readRate,
      ...levels,
      sessionOverheadMs: {
        p50: round2(levels.session!.p50Ms - levels.eventual!.p50Ms),
        p99: round2(levels.session!.p99Ms - levels.eventual!.p99Ms),
      },
      strongOverheadMs: {
        p50: round2(levels.strong!.p50Ms - levels.eventual!.p50Ms),
        p99: round2(levels.strong!.p99Ms - levels.eventual!.p99Ms),
      },
    };

    await waitCaughtUp(env);
    extra.produced_equals_applied = await producedEqualsApplied(env);

    step(`idle_records_per_s: ${plan.idleS} s with no client writes`);
    await sleep(5000);
    const idle = await idleWindow(env, plan.idleS);
    figures.idle_records_per_s = figure(
      { ...spec('idle_records_per_s'), note: 'anchor: a log nobody writes to' },
      { ours: [Math.round(idle * 1000) / 1000], anchor: [0] },
    );

    extra.node_peak_rss_mib = Object.fromEntries(
      env.nodes.map((n) => [n.id, peakRssMiB(n.pid?.() ?? -1) ?? null]),
    );

    step(
      `apply_rate: one new replica draining a ${plan.backlog}-record backlog vs raw better-sqlite3 upserts`,
    );
    await produceBacklog(env, { topic: 'bench.backlog', partitions: env.partitions, records: plan.backlog });
    const rawDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-bench-raw-'));
    const drains: Array<{ rowsPerSec: number; rebuildS: number; peakRssMiB: number | undefined }> = [];
    try {
      const ar = await alternate(
        1,
        async () => rawUpsertRate(rawDir, plan.backlog),
        async () => {
          const d = await drainWindow(env, {
            topic: 'bench.backlog',
            partitions: env.partitions,
            records: plan.backlog,
            dataDir: env.dataDir ?? rawDir,
          });
          drains.push(d);
          return d.rowsPerSec;
        },
      );
      figures.apply_rate = figure(
        {
          ...spec('apply_rate'),
          note: `${plan.backlog} distinct keys; ours from the first applied record to the last`,
        },
        ar,
      );
    } finally {
      fs.rmSync(rawDir, { recursive: true, force: true });
    }
    extra.replica_rebuild = {
      records: plan.backlog,
      seconds: drains[0]?.rebuildS,
      peakRssMiB: drains[0]?.peakRssMiB,
      note: 'a new node with an empty SQLite file, from spawn to every partition applied',
    };
    return {
      config: {
        brokers: shape.brokers,
        nodes: shape.nodes,
        partitions: env.partitions,
        replicationFactor: rf,
      },
      figures,
      extra,
    };
  } finally {
    await noop.stop().catch(() => {});
    await env.close();
    if (profileDir) {
      const summary = summarizeProfiles(profileDir);
      if (summary) io.err(summary);
    }
  }
}

/** Keys the read figures read (all written before they start). */
const READ_KEYS = 1000;

const round2 = (x: number) => Math.round(x * 100) / 100;

/** After the replicas caught up: every node's applied offsets sum to the log's end offsets. */
async function producedEqualsApplied(
  env: ChaosEnv,
): Promise<{ produced: number; applied: Record<string, number>; equal: boolean }> {
  const admin = kafkaClient({ brokers: env.bootstrap, clientId: 'bench-check' }).admin();
  await admin.connect();
  let produced = 0;
  try {
    produced = (await admin.fetchTopicOffsets(env.topic)).reduce((a, p) => a + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
  const applied: Record<string, number> = {};
  for (const n of env.nodes) {
    const r = await fetch(`${n.url}/v1/status`);
    const body = (await r.json()) as { partitions: Array<{ appliedOffset: number }> };
    applied[n.id] = body.partitions.reduce((a, p) => a + p.appliedOffset, 0);
  }
  // Heartbeats may land between the two reads: equal means no replica is short of what was produced then.
  return { produced, applied, equal: Object.values(applied).every((a) => a >= produced) };
}
