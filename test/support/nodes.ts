import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { portFree } from '../../src/cluster/local-cluster.js';
import { spawnNode, waitNodeReady } from '../../src/node/spawn.js';
import { brokers, uniqueName } from './kafka.js';

/** A `lagoon node` running as its own OS process, so a test can SIGKILL or SIGSTOP it alone. */
export interface NodeProc {
  id: string;
  url: string;
  port: number;
  db: string;
  logFile: string;
  child: ChildProcess;
  /** Starts the same node again (same id, port and SQLite file) after a kill or stop. */
  restart(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 9000);
    if (await portFree(port)) return port;
  }
  throw new Error('no free port');
}

/** Options of one test node process. */
export interface NodeSpec {
  id: string;
  port: number;
  topic: string;
  partitions: number;
  peers: string[];
  /** Directory holding the node's SQLite files and log. */
  dir: string;
  brokers: string[];
  eventsFile: string;
  env?: Record<string, string> | undefined;
}

/** One node process (not waited for): restart, kill and stop act on it alone. */
export function nodeProc(spec: NodeSpec): NodeProc {
  const db = path.join(spec.dir, spec.id, 'lagoon.db');
  const logFile = path.join(spec.dir, spec.id, 'node.log');
  fs.mkdirSync(path.dirname(db), { recursive: true });
  const spawnIt = () =>
    spawnNode(
      {
        id: spec.id,
        port: spec.port,
        brokers: spec.brokers,
        db,
        topic: spec.topic,
        partitions: spec.partitions,
        peers: spec.peers,
        eventsFile: spec.eventsFile,
      },
      { logFile, ...(spec.env ? { env: spec.env } : {}) },
    );
  const node: NodeProc = {
    id: spec.id,
    port: spec.port,
    url: `http://127.0.0.1:${spec.port}`,
    db,
    logFile,
    child: spawnIt(),
    async restart() {
      node.child = spawnIt();
      await waitReady(node, 60_000);
    },
    async kill(signal = 'SIGKILL') {
      const c = node.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      await exited;
    },
    async stop() {
      const c = node.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT');
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
  return node;
}

/** The events file nodes of a test share (the local cluster's, or one in `dir`). */
function eventsFileFor(dir: string): string {
  const dataDir = inject('kafkaDataDir');
  return dataDir ? path.join(dataDir, 'events.jsonl') : path.join(dir, 'events.jsonl');
}

/** Starts `count` nodes on a fresh topic, each its own process and SQLite file; waits for /readyz. */
export async function startNodes(
  count: number,
  opts: { topic?: string; partitions?: number; env?: Record<string, string>; brokers?: string[] } = {},
): Promise<{ topic: string; nodes: NodeProc[]; dir: string; stopAll: () => Promise<void> }> {
  const topic = opts.topic ?? uniqueName('lagoon-t');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-nodes-'));
  const nodes: NodeProc[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  for (let i = 1; i <= count; i++) {
    const port = ports[i - 1]!;
    nodes.push(
      nodeProc({
        id: uniqueName(`n${i}`),
        port,
        topic,
        partitions: opts.partitions ?? 6,
        peers: ports.filter((p) => p !== port).map((p) => `http://127.0.0.1:${p}`),
        dir,
        brokers: opts.brokers ?? brokers(),
        eventsFile: eventsFileFor(dir),
        env: opts.env,
      }),
    );
  }
  await Promise.all(nodes.map((n) => waitReady(n, 90_000)));
  return {
    topic,
    nodes,
    dir,
    stopAll: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts one more node on `topic` (an added node, or one with a lost store), with `peers` to bootstrap from;
 * not waited for. Its files go in `dir`; stop it yourself.
 */
export async function addNode(opts: {
  topic: string;
  dir: string;
  peers: string[];
  partitions?: number;
  env?: Record<string, string>;
  id?: string;
}): Promise<NodeProc> {
  return nodeProc({
    id: opts.id ?? uniqueName('added'),
    port: await freePort(),
    topic: opts.topic,
    partitions: opts.partitions ?? 6,
    peers: opts.peers,
    dir: opts.dir,
    brokers: brokers(),
    eventsFile: eventsFileFor(opts.dir),
    env: opts.env,
  });
}

export async function waitReady(node: NodeProc, timeoutMs: number): Promise<void> {
  await waitNodeReady(node.url, timeoutMs, () =>
    node.child.exitCode !== null
      ? `node ${node.id} exited: ${fs.readFileSync(node.logFile, 'utf8').slice(-2000)}`
      : undefined,
  );
}

/** A thin HTTP client for tests: JSON in, status + headers + parsed body out. */
// biome-ignore lint/suspicious/noExplicitAny: test responses are asserted field by field
type Json = any;
export async function http(
  method: string,
  url: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; headers: Headers; body: Json; ms: number }> {
  const started = Date.now();
  const r = await fetch(url, {
    method,
    headers: {
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.headers ?? {}),
    },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, headers: r.headers, body, ms: Date.now() - started };
}

export const kvUrl = (node: NodeProc, key: string, query = '') =>
  `${node.url}/v1/kv/${encodeURIComponent(key)}${query ? `?${query}` : ''}`;

/** Digests of all nodes once they agree (same applied offsets and digest on every partition). */
export async function digestsAgree(nodes: NodeProc[]): Promise<boolean> {
  const all = await Promise.all(nodes.map((n) => http('GET', `${n.url}/v1/digest`).then((r) => r.body)));
  const first = JSON.stringify(all[0].partitions);
  return all.every((d) => JSON.stringify(d.partitions) === first);
}

/**
 * `concurrency` loops of PUTs until stopped: enough load that a stopped replica's lag grows by hundreds of records
 * within seconds. Over `keys` keys named `<prefix>-<n % keys>`, or, without `keys`, a new key `<prefix>-<n>` per
 * write — then `acked` says exactly which writes were acknowledged (key → n). `target` is one node, or a function
 * giving the nodes to spread over (loop i writes to node i mod count, asked again before every write). Failures
 * (a fault on purpose) only slow a loop down and are counted in `outcomes`. Pausable, so "caught up" can mean
 * exactly 0.
 */
export function writeLoop(
  target: NodeProc | (() => NodeProc[]),
  opts: { prefix: string; keys?: number; concurrency: number; timeoutMs?: number },
) {
  const targets = typeof target === 'function' ? target : () => [target];
  let running = true;
  let paused = false;
  let ok = 0;
  let i = 0;
  const acked = new Map<string, number>();
  const outcomes = new Map<string, number>();
  const count = (tag: string) => outcomes.set(tag, (outcomes.get(tag) ?? 0) + 1);
  const loop = async (lane: number) => {
    while (running) {
      if (paused) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const nodes = targets();
      const node = nodes[lane % nodes.length]!;
      const n = i++;
      const key = `${opts.prefix}-${opts.keys === undefined ? n : n % opts.keys}`;
      try {
        const r = await http('PUT', kvUrl(node, key), { body: { n }, timeoutMs: opts.timeoutMs ?? 5000 });
        count(r.status === 200 ? 'ok' : `${r.status} ${r.body?.code ?? ''}`);
        if (r.status === 200) {
          ok++;
          acked.set(key, n);
        }
      } catch {
        count('no answer');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency }, (_, lane) => loop(lane)));
  return {
    get ok() {
      return ok;
    },
    acked,
    outcomes,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
}
