import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startOwnEnv } from '../chaos/env.js';
import type { CliIo } from '../cli/io.js';
import type { LocalCluster } from '../cluster/local-cluster.js';

/**
 * `lagoon bench outage`: the same all-brokers-down minute, once with strict writes and once with buffered
 * writes, on its own 3-broker cluster and 3 nodes. A closed-loop client per key writes through the nodes at a
 * steady rate before and during the outage (each write answered before the key's next is sent); the brokers
 * come back, the load stops, the system settles; then the report says what the client saw (status codes over
 * time) and what the store held afterwards. Writes `outage.json` and `outage.md` to --out (default
 * bench-results/); `--render outage.json` prints an earlier run's Markdown again.
 */

type Mode = 'strict' | 'buffered';

interface Answer {
  /** When the request was sent (ms since epoch). */
  sentAt: number;
  /** Seconds since the outage began, when the request was sent (negative: before it). */
  t: number;
  status: number;
  code?: string;
  ms: number;
  key: string;
  n: number;
  id?: string;
  node: string;
}

interface PhaseReport {
  mode: Mode;
  outageSeconds: number;
  writes: number;
  byStatus: Record<string, number>;
  /** Per 5-second bucket of send time (relative to the outage start): counts per status. */
  timeline: Array<{ from: number; counts: Record<string, number> }>;
  latencyMs: Record<string, { p50: number; p99: number; max: number }>;
  /** After the brokers returned: how long until every outbox was empty and the replicas agreed. */
  settleSeconds: number;
  store: {
    keys: number;
    /** Keys whose value on every replica is the last write the client was answered 2xx for. */
    lastAnsweredValueEverywhere: number;
    /** Writes sent during the outage whose effect the store holds (answered 2xx, and applied). */
    outageWritesKept: number;
    outageWritesSent: number;
    /** Buffered writes whose GET /v1/writes/{id} says applied on the node that took them. */
    bufferedApplied: number;
    bufferedRejectedOrOther: number;
    /** Per-key versions in the order the writes were answered (buffered writes). */
    perKeyOrderHeld: boolean;
    digestsAgree: boolean;
  };
}

const BUCKET_S = 5;

export async function outageCommand(args: string[], io: CliIo): Promise<number> {
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
  };
  const outI = args.indexOf('--out');
  const outDir = outI >= 0 && args[outI + 1] ? args[outI + 1]! : 'bench-results';
  // --render FILE: the Markdown of an earlier run's outage.json, without running anything.
  const renderI = args.indexOf('--render');
  if (renderI >= 0 && args[renderI + 1]) {
    io.out(markdown(JSON.parse(fs.readFileSync(args[renderI + 1]!, 'utf8'))));
    return 0;
  }
  const outageS = opt('outage', 60);
  const warmS = opt('warmup', 10);
  const keys = opt('keys', 30);
  const perKeyRate = opt('key-rate', 2);

  // The chaos suite's system under test: its own 3-broker cluster, topic and 3 nodes, torn down after.
  const env = await startOwnEnv({ proxied: false, progress: (l) => io.err(l) });
  const cluster = env.cluster;
  const urls = env.nodes.map((n) => n.url);
  try {
    const phases: PhaseReport[] = [];
    for (const mode of ['strict', 'buffered'] as const) {
      io.err(`${mode}: ${warmS} s of writes, then every broker down for ${outageS} s…`);
      phases.push(await phase(mode, { cluster, urls, keys, perKeyRate, warmS, outageS, io }));
    }
    fs.mkdirSync(outDir, { recursive: true });
    const report = {
      generatedAt: new Date().toISOString(),
      machine: `${os.cpus().length} cores, ${os.platform()}`,
      setup: { brokers: 3, nodes: 3, keys, perKeyRate, warmupSeconds: warmS, outageSeconds: outageS },
      phases,
    };
    fs.writeFileSync(path.join(outDir, 'outage.json'), `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(path.join(outDir, 'outage.md'), markdown(report));
    io.out(markdown(report));
    io.err(`report: ${path.join(outDir, 'outage.md')}`);
    return phases.every((p) => p.store.digestsAgree) ? 0 : 1;
  } finally {
    await env.close();
  }
}

async function phase(
  mode: Mode,
  o: {
    cluster: LocalCluster;
    urls: string[];
    keys: number;
    perKeyRate: number;
    warmS: number;
    outageS: number;
    io: CliIo;
  },
): Promise<PhaseReport> {
  const answers: Answer[] = [];
  let running = true;
  const gapMs = 1000 / o.perKeyRate;
  const loops = Array.from({ length: o.keys }, async (_, k) => {
    const url = o.urls[k % o.urls.length]!;
    const key = `${mode}-${k}`;
    let n = 0;
    // Stagger the keys over one period, so the load is steady.
    await sleep((gapMs * k) / o.keys);
    while (running) {
      const sent = Date.now();
      const a: Answer = { sentAt: sent, t: 0, status: 0, ms: 0, key, n, node: url };
      try {
        const r = await fetch(`${url}/v1/kv/${key}?timeoutMs=10000`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', 'lagoon-write-mode': mode },
          body: JSON.stringify({ key, n }),
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await r.json()) as { code?: string; id?: string };
        a.status = r.status;
        if (body.code) a.code = body.code;
        if (r.status === 202 && body.id) a.id = body.id;
      } catch (e) {
        a.status = 0;
        a.code = (e as Error).name;
      }
      a.ms = Date.now() - sent;
      answers.push(a);
      n++;
      await sleep(Math.max(0, gapMs - (Date.now() - sent)));
    }
  });
  await sleep(o.warmS * 1000);
  const outageAt = Date.now();
  await o.cluster.stop(5000);
  o.io.err(`${mode}: brokers down`);
  await sleep(Math.max(0, o.outageS * 1000 - (Date.now() - outageAt)));
  running = false;
  await Promise.all(loops);
  for (const a of answers) a.t = (a.sentAt - outageAt) / 1000;
  const outageSeconds = (Date.now() - outageAt) / 1000;
  o.io.err(`${mode}: load stopped after ${outageSeconds.toFixed(0)} s of outage; brokers back…`);
  const back = Date.now();
  await o.cluster.start();
  // Settled: every outbox empty, and every replica at the same offsets and digests.
  let agree = false;
  for (let i = 0; i < 600 && !agree; i++) {
    await sleep(1000);
    try {
      const st = await Promise.all(o.urls.map((u) => getJson(`${u}/v1/status`)));
      if (st.some((s) => s.outboxDepth !== 0)) continue;
      const d = await Promise.all(o.urls.map((u) => getJson(`${u}/v1/digest`)));
      agree = d.every((x) => JSON.stringify(x.partitions) === JSON.stringify(d[0].partitions));
    } catch {
      // a node busy or Kafka still electing: next round
    }
  }
  const settleSeconds = (Date.now() - back) / 1000;
  o.io.err(`${mode}: settled ${settleSeconds.toFixed(0)} s after the brokers came back`);
  return {
    mode,
    outageSeconds,
    writes: answers.length,
    byStatus: countBy(answers),
    timeline: timeline(answers, outageSeconds),
    latencyMs: latencies(answers),
    settleSeconds,
    store: await judgeStore(mode, answers, o.urls, o.keys, agree),
  };
}

async function judgeStore(
  mode: Mode,
  answers: Answer[],
  urls: string[],
  keys: number,
  digestsAgree: boolean,
): Promise<PhaseReport['store']> {
  let lastEverywhere = 0;
  for (let k = 0; k < keys; k++) {
    const key = `${mode}-${k}`;
    const last = answers.filter((a) => a.key === key && (a.status === 200 || a.status === 202)).pop();
    const values = await Promise.all(urls.map((u) => getJson(`${u}/v1/kv/${key}`).catch(() => undefined)));
    if (last !== undefined && values.every((v) => v?.value?.n === last.n)) lastEverywhere++;
  }
  let applied = 0;
  let other = 0;
  const appliedIds = new Set<string>();
  const offsetsByKey = new Map<string, Array<{ n: number; offset: number }>>();
  for (const a of answers.filter((x) => x.id !== undefined)) {
    const w = await getJson(`${a.node}/v1/writes/${a.id}`).catch(() => undefined);
    if (w?.status === 'applied') {
      applied++;
      appliedIds.add(a.id!);
      const list = offsetsByKey.get(a.key) ?? [];
      list.push({ n: a.n, offset: Number(String(w.version).split('-')[1]) });
      offsetsByKey.set(a.key, list);
    } else other++;
  }
  const perKeyOrderHeld = [...offsetsByKey.values()].every((l) =>
    l.sort((x, y) => x.n - y.n).every((e, i) => i === 0 || e.offset > l[i - 1]!.offset),
  );
  const duringOutage = answers.filter((a) => a.t >= 0);
  // Kept: acknowledged by Kafka (200), or buffered (202) and applied since.
  const kept = duringOutage.filter(
    (a) => a.status === 200 || (a.id !== undefined && appliedIds.has(a.id)),
  ).length;
  return {
    keys,
    lastAnsweredValueEverywhere: lastEverywhere,
    outageWritesSent: duringOutage.length,
    outageWritesKept: kept,
    bufferedApplied: applied,
    bufferedRejectedOrOther: other,
    perKeyOrderHeld,
    digestsAgree,
  };
}

const label = (a: Answer) =>
  a.status === 0 ? 'no answer' : a.code ? `${a.status} ${a.code}` : String(a.status);

function countBy(answers: Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[label(a)] = (out[label(a)] ?? 0) + 1;
  return out;
}

function timeline(answers: Answer[], outageSeconds: number): PhaseReport['timeline'] {
  const first = Math.floor(Math.min(0, ...answers.map((a) => a.t)) / BUCKET_S) * BUCKET_S;
  const out: PhaseReport['timeline'] = [];
  for (let from = first; from < outageSeconds; from += BUCKET_S) {
    out.push({ from, counts: countBy(answers.filter((a) => a.t >= from && a.t < from + BUCKET_S)) });
  }
  return out;
}

function latencies(answers: Answer[]): PhaseReport['latencyMs'] {
  const out: PhaseReport['latencyMs'] = {};
  const groups = new Map<string, number[]>();
  for (const a of answers.filter((x) => x.t >= 0)) {
    const l = groups.get(label(a)) ?? [];
    l.push(a.ms);
    groups.set(label(a), l);
  }
  for (const [k, v] of groups) {
    v.sort((a, b) => a - b);
    out[k] = {
      p50: v[Math.floor(v.length * 0.5)]!,
      p99: v[Math.floor(v.length * 0.99)]!,
      max: v[v.length - 1]!,
    };
  }
  return out;
}

function markdown(r: {
  generatedAt: string;
  machine: string;
  setup: Record<string, number>;
  phases: PhaseReport[];
}): string {
  const [s, b] = r.phases as [PhaseReport, PhaseReport];
  const labels = [...new Set(r.phases.flatMap((p) => Object.keys(p.byStatus)))].sort();
  const cell = (c: Record<string, number>) =>
    Object.entries(c)
      .sort()
      .map(([k, v]) => `${v}×${k}`)
      .join(', ') || '–';
  // The two phases' timelines start at different buckets (their warm-ups differ by a few requests): align by time.
  const froms = [...new Set([...s.timeline, ...b.timeline].map((t) => t.from))].sort((x, y) => x - y);
  const at = (p: PhaseReport, from: number) => p.timeline.find((t) => t.from === from)?.counts ?? {};
  const rows = froms.map(
    (from) =>
      `| ${from >= 0 ? '+' : ''}${from}…${from + BUCKET_S} s | ${cell(at(s, from))} | ${cell(at(b, from))} |`,
  );
  const lat = (p: PhaseReport) =>
    Object.entries(p.latencyMs)
      .map(([k, v]) => `${k}: p50 ${v.p50} ms, p99 ${v.p99} ms, max ${v.max} ms`)
      .join('; ');
  return `# The same all-brokers-down minute: strict vs buffered writes

Generated by \`lagoon bench outage\` (${r.generatedAt}, ${r.machine}): 3 brokers, 3 nodes, ${r.setup.keys} keys each
written by its own closed-loop client at ${r.setup.perKeyRate} writes/s (a key's next write is sent only after
the previous one was answered), ${r.setup.warmupSeconds} s before the outage, then every broker stopped for
${r.setup.outageSeconds} s; the load stops when the brokers come back. Times are when a request was *sent*,
relative to the moment the brokers were stopped.

## What the client saw

| | strict | buffered |
|---|---|---|
| writes sent | ${s.writes} | ${b.writes} |
${labels.map((l) => `| ${l} | ${s.byStatus[l] ?? 0} | ${b.byStatus[l] ?? 0} |`).join('\n')}
| latency during the outage | ${lat(s)} | ${lat(b)} |

Status codes over time (per ${BUCKET_S} s):

| sent at | strict | buffered |
|---|---|---|
${rows.join('\n')}

## What the store held afterwards

| | strict | buffered |
|---|---|---|
| writes sent during the outage | ${s.store.outageWritesSent} | ${b.store.outageWritesSent} |
| of those, in the store afterwards | ${s.store.outageWritesKept} | ${b.store.outageWritesKept} |
| buffered writes applied (GET /v1/writes/{id}) | – | ${b.store.bufferedApplied} of ${b.store.bufferedApplied + b.store.bufferedRejectedOrOther} |
| keys whose value on every replica is the last write answered 2xx | ${s.store.lastAnsweredValueEverywhere} / ${s.store.keys} | ${b.store.lastAnsweredValueEverywhere} / ${b.store.keys} |
| per-key order of buffered writes held in the log | – | ${b.store.perKeyOrderHeld ? 'yes' : 'NO'} |
| replicas converged (equal digests) | ${s.store.digestsAgree ? 'yes' : 'NO'} | ${b.store.digestsAgree ? 'yes' : 'NO'} |
| brokers back → settled (outboxes empty, digests equal) | ${s.settleSeconds.toFixed(0)} s | ${b.settleSeconds.toFixed(0)} s |
`;
}

async function getJson(url: string) {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  // biome-ignore lint/suspicious/noExplicitAny: report fields are read one by one
  return (await r.json()) as any;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
