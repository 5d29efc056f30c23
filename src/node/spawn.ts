import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LagoonError } from '../errors.js';

/** The `lagoon` entry script, for starting nodes as their own OS processes. */
export const LAGOON_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/lagoon.js');

export interface NodeProcessSpec {
  id: string;
  port: number;
  brokers: string[];
  db: string;
  topic?: string;
  partitions?: number;
  peers?: string[];
  eventsFile?: string;
}

/** argv (after `node`) that starts one `lagoon node` — shared by `lagoon up`, the bench and the tests. */
export function nodeProcessArgs(spec: NodeProcessSpec): string[] {
  return [
    LAGOON_BIN,
    'node',
    '--id',
    spec.id,
    '--port',
    String(spec.port),
    '--kafka',
    spec.brokers.join(','),
    '--db',
    spec.db,
    ...(spec.topic ? ['--topic', spec.topic] : []),
    ...(spec.partitions ? ['--partitions', String(spec.partitions)] : []),
    ...(spec.peers?.length ? ['--peers', spec.peers.join(',')] : []),
    ...(spec.eventsFile ? ['--events-file', spec.eventsFile] : []),
  ];
}

/**
 * Starts one `lagoon node` as its own OS process — for `lagoon up`, the chaos runner, the bench and the
 * tests — with its output appended to `logFile`. It dies with this process (LAGOON_OWNER_PID).
 */
export function spawnNode(
  spec: NodeProcessSpec,
  opts: { logFile: string; env?: Record<string, string>; execArgv?: string[] },
): ChildProcess {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const out = fs.openSync(opts.logFile, 'a');
  try {
    return spawn(process.execPath, [...(opts.execArgv ?? []), ...nodeProcessArgs(spec)], {
      stdio: ['ignore', out, out],
      env: { ...process.env, LAGOON_OWNER_PID: String(process.pid), ...(opts.env ?? {}) },
    });
  } finally {
    fs.closeSync(out);
  }
}

/** Polls `<url>/readyz` until it answers 200; `alive` lets the caller fail fast if the process died. */
export async function waitNodeReady(
  url: string,
  timeoutMs: number,
  alive: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const dead = alive();
    if (dead) throw new LagoonError('node_exited', dead);
    try {
      const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
      last = `${r.status} ${(await r.text()).slice(0, 500)}`;
    } catch (e) {
      last = `no answer (${(e as Error).message})`; // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new LagoonError(
    'node_not_ready',
    `${url} was not ready after ${timeoutMs} ms; its last /readyz: ${last}; see its node.log`,
  );
}
