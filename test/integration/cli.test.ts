import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreeBasePort, LocalCluster } from '../../src/cluster/local-cluster.js';
import { isAlive } from '../../src/cluster/process.js';
import { eventually } from '../support/kafka.js';
import { freePort, http } from '../support/nodes.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/lagoon.js');
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-cli-'));
  dirs.push(d);
  return d;
};

function lagoon(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Pids of live processes whose command line contains `marker`. */
function processesMatching(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(marker) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function states(out: string): Record<number, string> {
  const res: Record<number, string> = {};
  for (const m of out.matchAll(/^broker (\d+)\s+127\.0\.0\.1:\d+\s+pid=\S+\s+(up|down|paused)/gm))
    res[Number(m[1])] = m[2]!;
  return res;
}

afterAll(() => {
  for (const d of dirs) {
    try {
      LocalCluster.open({ dataDir: d })
        .stop(5000)
        .catch(() => {});
    } catch {
      // no cluster there
    }
  }
});

describe('lagoon kafka (the CLI from a shell)', () => {
  it('start, status, kill, start --broker, pause/resume, stop — and Kafka’s own tools see 3 brokers', async () => {
    const dir = tmp();
    const base = await findFreeBasePort(3);
    const start = lagoon(['kafka', 'start', '--data-dir', dir, '--kafka-port', String(base)]);
    expect(start.code, start.err).toBe(0);
    expect(states(start.out)).toEqual({ 1: 'up', 2: 'up', 3: 'up' });
    expect(start.out).toMatch(/^controller [123]$/m);

    const cluster = LocalCluster.open({ dataDir: dir });
    const listed = await cluster.tool('org.apache.kafka.tools.ClusterTool', [
      'list-endpoints',
      '--bootstrap-server',
      `127.0.0.1:${base}`,
    ]);
    for (let id = 1; id <= 3; id++)
      expect(listed).toMatch(new RegExp(`^${id}\\s+127\\.0\\.0\\.1\\s+${base + id - 1}\\s`, 'm'));

    expect(lagoon(['kafka', 'kill', '--broker', '2', '--data-dir', dir]).code).toBe(0);
    expect(states(lagoon(['kafka', 'status', '--data-dir', dir]).out)).toEqual({
      1: 'up',
      2: 'down',
      3: 'up',
    });

    const restarted = lagoon(['kafka', 'start', '--broker', '2', '--data-dir', dir]);
    expect(restarted.code, restarted.err).toBe(0);
    expect(states(restarted.out)).toEqual({ 1: 'up', 2: 'up', 3: 'up' });

    expect(lagoon(['kafka', 'pause', '--broker', '3', '--data-dir', dir]).code).toBe(0);
    expect(states(lagoon(['kafka', 'status', '--data-dir', dir]).out)[3]).toBe('paused');
    expect(lagoon(['kafka', 'resume', '--broker', '3', '--data-dir', dir]).code).toBe(0);

    const pids = cluster.status().map((b) => b.pid!);
    expect(lagoon(['kafka', 'stop', '--data-dir', dir]).code).toBe(0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(states(lagoon(['kafka', 'status', '--data-dir', dir]).out)).toEqual({
      1: 'down',
      2: 'down',
      3: 'down',
    });
  });

  it('explains mistakes instead of failing obscurely', () => {
    const none = lagoon(['kafka', 'status', '--data-dir', tmp()]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/No local cluster .* lagoon kafka start/);
    const bad = lagoon(['kafka', 'explode']);
    expect(bad.code).toBe(2);
    const noBroker = lagoon(['kafka', 'kill']);
    expect(noBroker.code).toBe(2);
  });

  it('lagoon up leaves no JVM or node behind when it is SIGKILLed', async () => {
    const dir = tmp();
    const apiPort = await freePort();
    const base = await findFreeBasePort(1);
    const up = spawn(
      process.execPath,
      [
        BIN,
        'up',
        '--brokers',
        '1',
        '--nodes',
        '1',
        '--data-dir',
        dir,
        '--port',
        String(apiPort),
        '--kafka-port',
        String(base),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    up.stdout.on('data', (d) => {
      out += d;
    });
    up.stderr.on('data', (d) => {
      out += d;
    });
    await eventually(
      'lagoon up ready',
      () => (out.includes('Lagoon is up') ? true : undefined),
      120_000,
      250,
    );
    const put = await http('PUT', `http://127.0.0.1:${apiPort}/v1/kv/q`, { body: 1 });
    expect(put.status).toBe(200);
    const brokerPid = LocalCluster.open({ dataDir: dir }).status()[0]!.pid!;
    expect(isAlive(brokerPid)).toBe(true);
    up.kill('SIGKILL');
    await eventually('broker JVM gone', () => (isAlive(brokerPid) ? undefined : true), 120_000);
    // Not just its port: the node process itself must be gone (a stray Kafka client timer once kept one alive).
    const nodePids = () => processesMatching(path.join(dir, 'nodes', 'node-1', 'lagoon.db'));
    await eventually('node process gone', () => (nodePids().length === 0 ? true : undefined), 120_000);
    await expect(http('GET', `http://127.0.0.1:${apiPort}/healthz`, { timeoutMs: 500 })).rejects.toThrow();
  });
});
