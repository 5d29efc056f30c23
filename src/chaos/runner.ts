import fs from 'node:fs';
import path from 'node:path';
import { partitionOf } from '../core/partitioner.js';
import { topicTag } from '../core/session.js';
import { LagoonError } from '../errors.js';
import { kafkaClient } from '../log/kafka-client.js';
import { checkAll } from './checkers/index.js';
import { attachEnv, type ChaosEnv, startOwnEnv } from './env.js';
import type { FaultWindow, History, NodeFinal } from './history.js';
import { Load, now, resolvePending } from './load.js';
import { renderPlot } from './plot.js';
import { buildReport, type ChaosReport, type FaultDetail, type LagSample, renderMarkdown } from './report.js';
import {
  type BrokerTarget,
  describeAction,
  type FaultAction,
  MIN_RECOVERY_MS,
  mulberry32,
  type PlannedFault,
  PROXY_SCENARIOS,
  planScenario,
  type ScenarioName,
  WRITE_FAILURE_BUDGET,
} from './scenarios.js';

/**
 * One chaos run, Jepsen-style: start (or attach to) a cluster and three nodes, run the open-loop load,
 * inject and heal the scenario's faults on its seeded schedule, stop the load, let the replicas settle,
 * collect every node's final state, check the history, and write report.json / report.md / plot.svg /
 * history.json. All I/O of a run lives here; the schedule, the checks and the report are pure.
 */

/** Options of one run. */
export interface ChaosOptions {
  scenario: ScenarioName;
  seed: number;
  durationS: number;
  /** ops/s. */
  rate: number;
  /** Use the cluster and nodes of a running `lagoon up` in `dataDir`. */
  attach?: boolean;
  dataDir?: string;
  /** Where the report goes (created). */
  outDir: string;
  /** Number of keys the load touches. */
  keys?: number;
  progress: (line: string) => void;
  /** Aborting stops the run early (Ctrl-C); cleanup still runs. */
  signal?: AbortSignal;
  /** Bound on the settle phase. */
  settleTimeoutMs?: number;
  /** Extra environment of own node i (0-based); not with `attach`. */
  nodeEnv?: (index: number) => Record<string, string>;
}

/** What a run produced. */
export interface ChaosResult {
  report: ChaosReport;
  reportPath: string;
  outDir: string;
  history: History;
}

const HTTP_TIMEOUT_MS = 5000;

async function getJson<T>(url: string, timeoutMs = HTTP_TIMEOUT_MS): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new LagoonError('http_error', `${url} answered ${r.status}`);
  return (await r.json()) as T;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

interface StatusBody {
  node: string;
  partitions: Array<{ partition: number; appliedOffset: number; endOffset: number; lagRecords: number }>;
}
interface DigestBody {
  node: string;
  partitions: Array<{ partition: number; appliedOffset: number; digest: string }>;
}

/** Partition → leader broker id, from the cluster metadata (empty if no broker answered). */
async function leaders(env: ChaosEnv): Promise<Map<number, number>> {
  const admin = kafkaClient(
    { brokers: env.bootstrap, clientId: 'lagoon-chaos-meta' },
    { connectionTimeout: 1000, requestTimeout: 3000, retry: { retries: 1 } },
  ).admin();
  try {
    await admin.connect();
    const md = await admin.fetchTopicMetadata({ topics: [env.topic] });
    const out = new Map<number, number>();
    for (const p of md.topics[0]?.partitions ?? []) if (p.leader >= 0) out.set(p.partitionId, p.leader);
    return out;
  } catch {
    return new Map();
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** The latest partition → leader map and when it was read. */
interface LeaderCache {
  at: number;
  map: Map<number, number>;
}

/** Keeps `cache` fresh (every 2 s) until stopped. */
function watchLeaders(env: ChaosEnv, cache: LeaderCache): () => void {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const map = await leaders(env);
      if (map.size > 0) Object.assign(cache, { at: Date.now(), map });
      await sleep(2000);
    }
  })();
  return () => {
    stopped = true;
  };
}

/** Tells the dashboards (best effort, any node that answers). */
async function postEvent(env: ChaosEnv, kind: string, target: string, message: string): Promise<void> {
  for (const n of env.nodes) {
    try {
      const r = await fetch(`${n.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind, target, message, source: 'chaos' }),
        signal: AbortSignal.timeout(2000),
      });
      if (r.ok) return;
    } catch {
      // that node is down; try the next
    }
  }
}

interface Injected {
  window: FaultWindow;
  detail: FaultDetail;
  heal: () => Promise<void>;
}

/** Resolves the fault's targets against the live cluster and injects it. */
async function inject(
  env: ChaosEnv,
  f: PlannedFault,
  rng: () => number,
  cached: LeaderCache,
): Promise<Injected> {
  // Leaders as of a moment ago (a metadata round trip on a busy machine can take seconds).
  const leaderMap: Map<number, number> = f.actions.every((a) => a.type === 'kill-node')
    ? new Map()
    : Date.now() - cached.at < 5000 && cached.map.size > 0
      ? cached.map
      : await leaders(env);
  const chosen: number[] = [];
  const pickBroker = async (t: BrokerTarget): Promise<number> => {
    const live = env.cluster
      .status()
      .filter((b) => b.state === 'up' && !chosen.includes(b.id))
      .map((b) => b.id);
    let id: number | undefined;
    if (t.kind === 'broker') id = t.id;
    else if (t.kind === 'leader') id = leaderMap.get(t.partition);
    else if (t.kind === 'controller') id = await env.cluster.activeController();
    if (id === undefined || chosen.includes(id)) id = live[Math.floor(rng() * live.length)] ?? 1;
    chosen.push(id);
    return id;
  };
  const heals: Array<() => Promise<void>> = [];
  const targets: string[] = [];
  const resolved: Array<{ a: FaultAction; id: number }> = [];
  for (const a of f.actions)
    resolved.push({ a, id: a.type === 'kill-node' ? a.node : await pickBroker(a.target) });
  const startAt = now();
  await Promise.all(
    resolved.map(async ({ a, id }) => {
      switch (a.type) {
        case 'kill-broker':
          targets.push(`broker-${id}`);
          await env.cluster.killBroker(id);
          heals.push(() => env.cluster.startBroker(id, 120_000));
          return;
        case 'stop-broker':
          targets.push(`broker-${id}`);
          await env.cluster.stopBroker(id);
          heals.push(() => env.cluster.startBroker(id, 120_000));
          return;
        case 'pause-broker':
          targets.push(`broker-${id}`);
          env.cluster.pauseBroker(id);
          heals.push(async () => env.cluster.resumeBroker(id));
          return;
        case 'kill-node': {
          const node = env.nodes[id]!;
          targets.push(node.id);
          await node.kill();
          heals.push(() => node.restart());
          return;
        }
        case 'proxy': {
          const proxy = env.proxies?.get(id);
          if (!proxy) throw new LagoonError('no_proxy', `No fault proxy for broker ${id}`);
          targets.push(`broker-${id}`);
          proxy.setFault(a.fault);
          heals.push(async () => proxy.setFault({ kind: 'none' }));
          return;
        }
      }
    }),
  );
  const brokerIds = resolved.filter((r) => r.a.type !== 'kill-node').map((r) => r.id);
  const downed = resolved.filter((r) => r.a.type === 'kill-broker' || r.a.type === 'stop-broker');
  if (downed.length === env.cluster.brokerCount) {
    // The whole cluster is down: bring it back as one (each broker's readiness needs the others' quorum).
    heals.length = 0;
    heals.push(() => env.cluster.start({ timeoutMs: 180_000 }));
  }
  const affected = [...leaderMap]
    .filter(([, leader]) => brokerIds.includes(leader))
    .map(([p]) => p)
    .sort((a, b) => a - b);
  const description = f.actions
    .map(
      (a, i) =>
        `${describeAction(a)}${a.type === 'kill-node' || a.target.kind === 'broker' ? '' : ` (broker ${resolved[i]!.id})`}`,
    )
    .join('; ');
  const window: FaultWindow = { kind: f.kind, target: targets.sort().join(','), startAt, endAt: startAt };
  return {
    window,
    detail: { window, healStartAt: startAt, affectedPartitions: affected, description },
    heal: async () => {
      await Promise.all(heals.map((h) => h()));
    },
  };
}

/** Every node's replica lag, sampled once a second into `samples` until stopped. */
function sampleLag(env: ChaosEnv, samples: LagSample[]): () => void {
  let busy = false;
  const t = setInterval(async () => {
    if (busy) return;
    busy = true;
    await Promise.all(
      env.nodes.map(async (n) => {
        const at = now();
        try {
          const s = await getJson<StatusBody>(`${n.url}/v1/status`, 2500);
          samples.push({
            at,
            node: n.id,
            lagRecords: s.partitions.reduce((sum, p) => sum + p.lagRecords, 0),
          });
        } catch {
          samples.push({ at, node: n.id, lagRecords: null });
        }
      }),
    );
    busy = false;
  }, 1000);
  return () => clearInterval(t);
}

/**
 * Waits until every node is caught up (lag 0) and all agree on applied offsets and digests of every
 * partition. Returns whether they did within the bound.
 */
async function settle(
  env: ChaosEnv,
  timeoutMs: number,
  progress: (l: string) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  const started = Date.now();
  let lastLine = 0;
  while (Date.now() - started < timeoutMs && !signal?.aborted) {
    let line: string;
    try {
      const [statuses, digests] = await Promise.all([
        Promise.all(env.nodes.map((n) => getJson<StatusBody>(`${n.url}/v1/status`))),
        Promise.all(env.nodes.map((n) => getJson<DigestBody>(`${n.url}/v1/digest`))),
      ]);
      const lag = statuses.map((s) => s.partitions.reduce((a, p) => a + p.lagRecords, 0));
      const first = digests[0]!.partitions;
      const agree = first.filter((p) =>
        digests.every((d) => {
          const q = d.partitions.find((x) => x.partition === p.partition);
          return q && q.appliedOffset === p.appliedOffset && q.digest === p.digest;
        }),
      ).length;
      if (lag.every((l) => l === 0) && agree === env.partitions) {
        progress(
          `Settled in ${((Date.now() - started) / 1000).toFixed(1)} s: every replica caught up, digests agree`,
        );
        return true;
      }
      line = `settling: lag ${statuses.map((s, i) => `${s.node} ${lag[i]}`).join(', ')}; digests agree on ${agree}/${env.partitions} partitions`;
    } catch (e) {
      line = `settling: a node did not answer (${(e as Error).message})`;
    }
    if (Date.now() - lastLine > 5000) {
      progress(line);
      lastLine = Date.now();
    }
    await sleep(300, signal);
  }
  progress(`Did not settle within ${Math.round(timeoutMs / 1000)} s`);
  return false;
}

/**
 * Every node's end offsets and digests, taken together: heartbeat records keep extending idle partitions,
 * so the pair is retaken (a few times, bounded) until each node's applied offsets equal the end offsets
 * it reports and all nodes agree; the last try is kept if they never do.
 */
async function offsetsSnapshot(
  env: ChaosEnv,
): Promise<Map<string, { digests: DigestBody['partitions']; endOffsets: Record<number, number> }>> {
  let out = new Map<string, { digests: DigestBody['partitions']; endOffsets: Record<number, number> }>();
  for (let attempt = 0; attempt < 20; attempt++) {
    out = new Map();
    await Promise.all(
      env.nodes.map(async (n) => {
        try {
          const st = await getJson<StatusBody>(`${n.url}/v1/status`);
          const dg = await getJson<DigestBody>(`${n.url}/v1/digest`);
          out.set(n.id, {
            digests: dg.partitions,
            endOffsets: Object.fromEntries(st.partitions.map((p) => [p.partition, p.endOffset])),
          });
        } catch {
          // a node that does not answer has no finals; the convergence checker says so
        }
      }),
    );
    const all = [...out.values()];
    const first = all[0] ? JSON.stringify(all[0].digests) : '';
    const agreed =
      all.length === env.nodes.length &&
      all.every(
        (x) =>
          JSON.stringify(x.digests) === first &&
          x.digests.every((d) => x.endOffsets[d.partition] === d.appliedOffset),
      );
    if (agreed) break;
    await sleep(300);
  }
  return out;
}

/** Per node: digests and end offsets (taken together), an eventual read of every key, /v1/writes of every version seen. */
async function collectFinals(env: ChaosEnv, keys: string[], versions: string[]): Promise<NodeFinal[]> {
  const snap = await offsetsSnapshot(env);
  return Promise.all(
    env.nodes.map(async (n): Promise<NodeFinal> => {
      const final: NodeFinal = {
        node: n.id,
        digests: snap.get(n.id)?.digests ?? [],
        values: {},
        writes: {},
        endOffsets: snap.get(n.id)?.endOffsets ?? {},
      };
      await pool(keys, 16, async (k) => {
        try {
          const r = await fetch(`${n.url}/v1/kv/${encodeURIComponent(k)}`, {
            signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
          });
          const body = (await r.json()) as { value?: unknown; version?: string };
          final.values[k] =
            r.status === 200 && typeof body.version === 'string'
              ? { value: typeof body.value === 'number' ? body.value : null, version: body.version }
              : null;
        } catch {
          // left out: unknown
        }
      });
      await pool(versions, 16, async (v) => {
        try {
          const b = await getJson<{ status: string; key: string | null }>(`${n.url}/v1/writes/${v}`);
          final.writes[v] = { status: b.status, key: b.key ?? null };
        } catch {
          // left out: unknown
        }
      });
      return final;
    }),
  );
}

/** The tail of each broker's server.log, next to the report (the run's data dir is removed after it). */
function copyBrokerLogs(env: ChaosEnv, outDir: string): void {
  if (!env.dataDir) return;
  for (const b of env.cluster.layout.brokers) {
    try {
      const text = fs.readFileSync(b.serverLog, 'utf8');
      fs.mkdirSync(path.join(outDir, 'logs'), { recursive: true });
      fs.writeFileSync(path.join(outDir, 'logs', `broker-${b.id}.log`), text.slice(-256 * 1024));
    } catch {
      // no log yet
    }
  }
}

/** Runs one scenario end to end and writes its report. Never leaves a broker or node behind. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const { progress, signal } = opts;
  const startedAt = new Date().toISOString();
  if (opts.attach && (opts.scenario === 'node-kill-mid-batch' || PROXY_SCENARIOS.has(opts.scenario))) {
    throw new LagoonError(
      'not_supported',
      `${opts.scenario} needs its own cluster and nodes; run it without --attach`,
    );
  }
  const env = opts.attach
    ? await attachEnv({ dataDir: opts.dataDir ?? '.lagoon' })
    : await startOwnEnv({
        proxied: PROXY_SCENARIOS.has(opts.scenario),
        progress,
        ...(opts.nodeEnv ? { nodeEnv: opts.nodeEnv } : {}),
      });
  const notes: string[] = [];
  const lag: LagSample[] = [];
  let stopSampling: (() => void) | undefined;
  let stopLeaders: (() => void) | undefined;
  let load: Load | undefined;
  const injected: Injected[] = [];
  try {
    const plan = planScenario(opts.scenario, {
      seed: opts.seed,
      durationMs: opts.durationS * 1000,
      partitions: env.partitions,
      nodes: env.nodes.length,
    });
    if (plan.loadMs > opts.durationS * 1000) {
      notes.push(
        `The load ran ${plan.loadMs / 1000} s, longer than the ${opts.durationS} s asked, to leave ${MIN_RECOVERY_MS / 1000} s of recovery after the last heal.`,
      );
    }
    // Keys unique to this run, so an attached store's other data never mixes into the history.
    const runId = `${opts.scenario}-${opts.seed}-${Date.now().toString(36)}`;
    const keys = Array.from({ length: opts.keys ?? 32 }, (_, i) => `chaos/${runId}/k${i}`);
    const tag = topicTag(env.topic);
    load = new Load({
      targets: env.nodes.map((n) => ({ id: n.id, url: n.url })),
      rate: opts.rate,
      keys,
      seed: opts.seed,
      topicTag: tag,
      partitions: env.partitions,
      partitionOf: (k) => partitionOf(k, env.partitions),
    });
    progress(
      `Scenario ${opts.scenario} (seed ${opts.seed}): ${opts.rate} ops/s for ${plan.loadMs / 1000} s over ${env.nodes.length} nodes, ${keys.length} keys; ` +
        `faults at ${plan.faults.map((f) => `${(f.atMs / 1000).toFixed(1)} s (${f.durationMs / 1000} s)`).join(', ')}`,
    );
    stopSampling = sampleLag(env, lag);
    const leaderCache: LeaderCache = { at: 0, map: new Map() };
    stopLeaders = watchLeaders(env, leaderCache);
    const t0 = now();
    load.start();
    const l = load;
    const ticker = setInterval(() => {
      const c = { ok: 0, fail: 0, unknown: 0, rejected: 0 };
      for (const o of l.ops) {
        if (o.kind !== 'write' || o.completeAt === undefined) continue;
        if (o.verdict === 'rejected') c.rejected++;
        else c[o.outcome]++;
      }
      progress(
        `  t=${Math.round((now() - t0) / 1000)} s: ${l.ops.length} ops; writes ok ${c.ok}, failed ${c.fail}, unknown ${c.unknown}, 412 ${c.rejected}; in flight ${l.pending}`,
      );
    }, 5000);
    const rng = mulberry32(opts.seed ^ 0xfa017);
    try {
      // A fault that lands late (a slow metadata lookup or restart) shifts the rest of the schedule with
      // it, so the planned gaps between faults are kept.
      let slip = 0;
      for (const f of plan.faults) {
        await sleep(t0 + f.atMs + slip - now(), signal);
        if (signal?.aborted) break;
        progress(`Injecting ${f.kind} (${f.actions.map(describeAction).join('; ')})…`);
        const inj = await inject(env, f, rng, leaderCache);
        injected.push(inj);
        slip = Math.max(slip, inj.window.startAt - (t0 + f.atMs));
        progress(
          `Fault injected at ${((inj.window.startAt - t0) / 1000).toFixed(1)} s: ${f.kind}: ${inj.detail.description}`,
        );
        void postEvent(env, f.kind, inj.window.target, inj.detail.description);
        await sleep(inj.window.startAt + f.durationMs - now(), signal);
        inj.detail.healStartAt = now();
        progress(`Healing ${f.kind} on ${inj.window.target}…`);
        try {
          await inj.heal();
        } catch (e) {
          // The run goes on: settling and the checkers show what a fault that would not heal did.
          notes.push(
            `Healing ${f.kind} on ${inj.window.target} failed: ${(e as Error).message.split('\n')[0]}`,
          );
          progress(`Healing failed: ${(e as Error).message.split('\n')[0]}`);
        }
        inj.window.endAt = now();
        slip = Math.max(slip, inj.window.endAt - (t0 + f.atMs + f.durationMs));
        progress(
          `Healed at ${((inj.window.endAt - t0) / 1000).toFixed(1)} s (heal took ${((inj.window.endAt - inj.detail.healStartAt) / 1000).toFixed(1)} s)`,
        );
        void postEvent(env, `${f.kind}-healed`, inj.window.target, `healed: ${inj.detail.description}`);
      }
      // A heal can take long (a JVM restart on a busy machine): the system still gets its recovery time under load.
      const lastHeal = injected.reduce((m, i) => Math.max(m, i.window.endAt), 0);
      await sleep(Math.max(t0 + plan.loadMs, lastHeal + MIN_RECOVERY_MS) - now(), signal);
    } finally {
      clearInterval(ticker);
      progress(`Stopping the load; waiting for ${load.pending} request(s) in flight…`);
      await load.stop();
      stopLeaders();
    }
    const endAt = now();
    if (signal?.aborted) throw new LagoonError('aborted', 'Chaos run interrupted');
    const settled = await settle(env, opts.settleTimeoutMs ?? 180_000, progress, signal);
    stopSampling();
    if (!settled) notes.push('The replicas did not settle (caught up, equal digests) within the bound.');
    if (load.skipped > 0) notes.push(`${load.skipped} arrivals were skipped: too many requests in flight.`);

    progress('Collecting every node’s final state…');
    const versions = new Set<string>();
    for (const o of load.ops) if (o.kind === 'write' && o.version !== undefined) versions.add(o.version);
    const finals = await collectFinals(env, keys, [...versions]);
    const resolved = resolvePending(load.ops, finals);
    if (resolved > 0)
      notes.push(
        `${resolved} pending (202) conditional write(s) resolved through /v1/writes after settling.`,
      );
    const history: History = {
      ops: load.ops,
      faults: injected.map((i) => i.window),
      finals,
      partitions: env.partitions,
      startAt: t0,
      endAt,
    };
    progress('Checking the history…');
    const budget = WRITE_FAILURE_BUDGET[opts.scenario];
    const outage = history.faults.some((f) => f.kind === 'all-brokers-down');
    // eventual-availability judges reads during a total outage; in other scenarios it has nothing to judge.
    const checks = checkAll(history, {
      // A key with many writes of unknown outcome can need a long search; 10× the default still ends in seconds.
      linearizableMaxSteps: 2_000_000,
      ...(budget === undefined ? {} : { maxFailedWrites: { [opts.scenario]: budget } }),
    }).filter((c) => outage || c.name !== 'eventual-availability');
    if (!outage) notes.push('eventual-availability is not judged: this scenario has no all-brokers outage.');
    const report = buildReport({
      scenario: opts.scenario,
      seed: opts.seed,
      durationS: Math.round((endAt - t0) / 1000),
      rate: opts.rate,
      startedAt,
      history,
      checks,
      faults: injected.map((i) => i.detail),
      lag,
      skipped: load.skipped,
      notes,
    });
    fs.mkdirSync(opts.outDir, { recursive: true });
    const reportPath = path.resolve(opts.outDir, 'report.json');
    fs.writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(path.join(opts.outDir, 'report.md'), renderMarkdown(report));
    fs.writeFileSync(
      path.join(opts.outDir, 'plot.svg'),
      renderPlot({
        title: `${opts.scenario} (seed ${opts.seed}) — ${report.valid === true ? 'valid' : report.valid === false ? 'INVALID' : 'unknown'}`,
        startAt: t0,
        endAt,
        ops: history.ops,
        faults: history.faults,
        lag,
      }),
    );
    fs.writeFileSync(path.join(opts.outDir, 'history.json'), JSON.stringify(history));
    copyBrokerLogs(env, opts.outDir);
    for (const n of env.nodes) {
      if (n.logFile && fs.existsSync(n.logFile)) {
        fs.mkdirSync(path.join(opts.outDir, 'logs'), { recursive: true });
        fs.copyFileSync(n.logFile, path.join(opts.outDir, 'logs', `${n.id}.log`));
      }
    }
    return { report, reportPath, outDir: path.resolve(opts.outDir), history };
  } finally {
    stopSampling?.();
    stopLeaders?.();
    await load?.stop();
    if (!opts.attach) progress('Stopping the cluster and nodes…');
    else {
      // An attached cluster is the user's: bring back anything this run left down.
      for (const inj of injected)
        if (inj.window.endAt === inj.window.startAt) await inj.heal().catch(() => {});
    }
    await env.close();
  }
}
