import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreeBasePort, LocalCluster, portFree } from '../cluster/local-cluster.js';
import { EVENTS_FILE } from '../core/events.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ensureTopic } from '../log/topic.js';
import { spawnNode, waitNodeReady } from '../node/spawn.js';
import type { FaultProxy } from './proxy.js';

/**
 * The system a chaos run attacks: a local KRaft cluster and three Lagoon nodes, each its own process —
 * started for the run in a temp dir (and stopped after it), or the ones a running `lagoon up` owns
 * (`--attach`). Everything listens on loopback only.
 */

/** A Lagoon node of the run. */
export interface ChaosNode {
  id: string;
  url: string;
  logFile?: string;
  /** The node's SQLite file (own nodes only). */
  db?: string;
  /** The node's OS process id while it runs (own nodes only). */
  pid?(): number | undefined;
  /** SIGKILL the node process (own nodes only). */
  kill(): Promise<void>;
  /** Start it again with the same id, port and SQLite file; resolves once /readyz answers. */
  restart(): Promise<void>;
}

/** What the runner needs from the system under test. */
export interface ChaosEnv {
  cluster: LocalCluster;
  nodes: ChaosNode[];
  topic: string;
  partitions: number;
  /** Bootstrap list as clients see it (the proxies' ports in proxied mode). */
  bootstrap: string[];
  /** Fault proxy per broker id, in proxied mode. */
  proxies: Map<number, FaultProxy> | undefined;
  /** Directory of the run's own cluster and nodes (absent when attached). */
  dataDir: string | undefined;
  /** Stops what the run started (nothing when attached). Idempotent. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 9000);
    if (await portFree(port)) return port;
  }
  throw new LagoonError('port_in_use', 'Found no free loopback port for a Lagoon node');
}

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

async function stopChild(c: ChildProcess, sig: NodeJS.Signals, graceMs: number): Promise<void> {
  if (exited(c)) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(sig);
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

/**
 * Starts a fresh 3-broker cluster (proxied if asked), the topic, and three nodes in a temp dir. Nodes
 * get LAGOON_OWNER_PID and the cluster a watchdog, so nothing outlives this process even if it is killed.
 */
export async function startOwnEnv(opts: {
  proxied: boolean;
  progress: (line: string) => void;
  partitions?: number;
  /** Brokers (default 3; the topic's replication factor is min(3, brokers), min ISR min(2, brokers)). */
  brokers?: number;
  /** Lagoon nodes (default 3). */
  nodes?: number;
  /** Extra environment of node i (0-based), e.g. a test-only break (src/testing/breaks.ts). */
  nodeEnv?: (index: number) => Record<string, string>;
  /** Node.js flags of every node process (e.g. the bench's --cpu-prof). */
  nodeExecArgv?: string[];
}): Promise<ChaosEnv> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-chaos-'));
  const partitions = opts.partitions ?? DEFAULTS.partitions;
  const topic = DEFAULTS.topic;
  const brokers = opts.brokers ?? 3;
  const nodeCount = opts.nodes ?? 3;
  const cluster = LocalCluster.open({
    dataDir,
    brokers,
    basePort: await findFreeBasePort(brokers),
    progress: opts.progress,
    proxied: opts.proxied,
  });
  const children = new Map<string, ChildProcess>();
  let proxies: Map<number, FaultProxy> | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await Promise.all([...children.values()].map((c) => stopChild(c, 'SIGTERM', 10_000)));
      for (const p of proxies?.values() ?? []) await p.close().catch(() => {});
      await cluster.stop().catch(() => {});
      fs.rmSync(dataDir, { recursive: true, force: true });
    })();
    return closing;
  };
  try {
    opts.progress(`Starting a ${brokers}-broker Kafka cluster in ${dataDir}…`);
    let settled = false;
    const starting = cluster.start({ owner: process.pid }).finally(() => {
      settled = true;
    });
    starting.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
    if (opts.proxied) {
      // The brokers advertise (and replicate through) their proxies, so these must listen before the
      // brokers are ready — but after the first start checked that every cluster port, proxies' included,
      // is free, which is done once cluster.json exists. Loaded only for the proxy scenarios.
      const { startProxies } = await import('./proxy.js');
      const deadline = Date.now() + 120_000;
      while (!settled && !fs.existsSync(cluster.layout.stateFile) && Date.now() < deadline) await sleep(50);
      proxies = await startProxies(cluster);
    }
    await starting;
    const bootstrap = cluster.bootstrap;
    const admin = kafkaClient({ brokers: bootstrap, clientId: 'lagoon-chaos' }).admin();
    await admin.connect();
    try {
      await ensureTopic(admin, {
        topic,
        partitions,
        replicationFactor: Math.min(3, brokers),
        minInsyncReplicas: Math.min(2, brokers),
      });
    } finally {
      await admin.disconnect().catch(() => {});
    }
    const ports: number[] = [];
    while (ports.length < nodeCount) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const nodes: ChaosNode[] = ports.map((port, i) => {
      const id = `node-${i + 1}`;
      const dir = path.join(dataDir, 'nodes', id);
      fs.mkdirSync(dir, { recursive: true });
      const logFile = path.join(dir, 'node.log');
      const spawnIt = () => {
        const child = spawnNode(
          {
            id,
            port,
            brokers: bootstrap,
            db: path.join(dir, 'lagoon.db'),
            topic,
            partitions,
            peers: urls.filter((_, j) => j !== i),
            eventsFile: path.join(dataDir, EVENTS_FILE),
          },
          {
            logFile,
            env: {
              // Fewer than 3 brokers: the node must expect the topic it was given (as `lagoon up --brokers 1` does).
              ...(brokers < 3
                ? {
                    LAGOON_REPLICATION_FACTOR: String(Math.min(3, brokers)),
                    LAGOON_MIN_INSYNC_REPLICAS: String(Math.min(2, brokers)),
                  }
                : {}),
              ...(opts.nodeEnv?.(i) ?? {}),
            },
            execArgv: opts.nodeExecArgv ?? [],
          },
        );
        children.set(id, child);
        return child;
      };
      const ready = () =>
        waitNodeReady(urls[i]!, 120_000, () => {
          const c = children.get(id);
          return c && exited(c) ? `${id} exited; see ${logFile}:\n${tail(logFile)}` : undefined;
        });
      spawnIt();
      return {
        id,
        url: urls[i]!,
        logFile,
        db: path.join(dir, 'lagoon.db'),
        pid: () => {
          const c = children.get(id);
          return c && !exited(c) ? c.pid : undefined;
        },
        kill: async () => {
          const c = children.get(id);
          if (c) await stopChild(c, 'SIGKILL', 0);
        },
        restart: async () => {
          const c = children.get(id);
          if (c && !exited(c)) throw new LagoonError('node_running', `${id} is still running`);
          spawnIt();
          await ready();
        },
      };
    });
    opts.progress(`Waiting for ${nodeCount} Lagoon nodes to be ready…`);
    await Promise.all(
      nodes.map((n, i) =>
        waitNodeReady(n.url, 120_000, () => {
          const c = children.get(`node-${i + 1}`);
          return c && exited(c) ? `${n.id} exited; see ${n.logFile}:\n${tail(n.logFile!)}` : undefined;
        }),
      ),
    );
    return { cluster, nodes, topic, partitions, bootstrap, proxies, dataDir, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The cluster and nodes of a running `lagoon up` (data dir, nodes on 8081…); node faults are not possible. */
export async function attachEnv(opts: {
  dataDir: string;
  apiPort?: number;
  nodes?: number;
}): Promise<ChaosEnv> {
  if (!LocalCluster.exists(opts.dataDir)) {
    throw new LagoonError(
      'no_cluster',
      `No local cluster in ${opts.dataDir}. Start one with 'lagoon up', or run without --attach.`,
    );
  }
  const cluster = LocalCluster.open({ dataDir: opts.dataDir });
  const base = opts.apiPort ?? DEFAULTS.apiPort;
  const urls = Array.from({ length: opts.nodes ?? 3 }, (_, i) => `http://127.0.0.1:${base + i}`);
  const statuses = await Promise.all(
    urls.map(async (u) => {
      try {
        const r = await fetch(`${u}/v1/status`, { signal: AbortSignal.timeout(3000) });
        return (await r.json()) as { node: string; topic: string; partitions: unknown[] };
      } catch (e) {
        throw new LagoonError(
          'node_unreachable',
          `No Lagoon node at ${u} (${(e as Error).message}); is 'lagoon up' running?`,
        );
      }
    }),
  );
  const first = statuses[0]!;
  const unsupported = async () => {
    throw new LagoonError('not_supported', 'Node faults need the run to own its nodes; run without --attach');
  };
  return {
    cluster,
    nodes: statuses.map((s, i) => ({ id: s.node, url: urls[i]!, kill: unsupported, restart: unsupported })),
    topic: first.topic,
    partitions: first.partitions.length,
    bootstrap: cluster.bootstrap,
    proxies: undefined,
    dataDir: undefined,
    close: async () => {},
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(file: string, chars = 2000): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}
