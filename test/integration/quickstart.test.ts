import { execSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { findFreeBasePort, LocalCluster, portFree } from '../../src/cluster/local-cluster.js';
import { isAlive } from '../../src/cluster/process.js';
import { eventually } from '../support/kafka.js';
import { freePort } from '../support/nodes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The curl commands of the README's quick start, as written. */
function readmeCurls(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Tests'));
  return quick.split('\n').filter((l) => l.startsWith('curl '));
}

it('the README quick start works as written: npm start, then its curl commands', async () => {
  const curls = readmeCurls();
  expect(curls.length).toBeGreaterThanOrEqual(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-quickstart-'));
  // Same command as the README, on free ports so it never collides with a running `npm start`.
  let api = await freePort();
  while (!(await Promise.all([api + 1, api + 2].map(portFree))).every(Boolean)) {
    api = await freePort();
  }
  const kafkaPort = await findFreeBasePort(3);
  const npm = spawn(
    'npm',
    ['start', '--', '--data-dir', dir, '--port', String(api), '--kafka-port', String(kafkaPort)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  npm.stdout.on('data', (d) => {
    out += d;
  });
  npm.stderr.on('data', (d) => {
    out += d;
  });
  try {
    await eventually(
      'npm start prints that Lagoon is up',
      () => (out.includes('Lagoon is up') ? true : undefined),
      180_000,
      250,
    );
    expect(out).toMatch(/docs http:\/\/127\.0\.0\.1:\d+\/docs/);
    const results = curls.map((c) =>
      execSync(
        c.replace(/localhost:808(\d)/g, (_, n) => `localhost:${api + Number(n) - 1}`),
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      ),
    );
    const put = JSON.parse(results[0]!);
    expect(put).toMatchObject({ key: 'greeting', status: 'acknowledged' });
    expect(put.version).toMatch(/^\d+-\d+$/);
    // The next read may land on another node before it applied the write: eventual means eventual.
    await eventually('the GET in the README returns the value', () => {
      const got = JSON.parse(
        execSync(
          curls[1]!.replace(/localhost:808(\d)/g, (_, n) => `localhost:${api + Number(n) - 1}`),
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
        ),
      );
      return got.value?.hello === 'world' ? got : undefined;
    });
  } finally {
    const pids = LocalCluster.exists(dir)
      ? LocalCluster.open({ dataDir: dir })
          .status()
          .map((b) => b.pid)
          .filter((p): p is number => p !== undefined)
      : [];
    process.kill(-npm.pid!, 'SIGINT');
    await new Promise((r) => npm.once('exit', r));
    // Ctrl-C stops everything cleanly: no broker JVM is left.
    for (const pid of pids)
      await eventually(`broker ${pid} stopped`, () => (isAlive(pid) ? undefined : true), 120_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expect(out).toContain('Stopped.');
});
