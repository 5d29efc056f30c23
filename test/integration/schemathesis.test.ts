import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeProc, startNodes } from '../support/nodes.js';

/**
 * schemathesis (Python, from PyPI) against the /openapi.json a real node serves (test/fuzz/schemathesis.sh):
 * every operation, valid and invalid requests generated from the document, checked for server errors, status
 * codes, content types and bodies the document does not describe, and invalid input that was accepted. The
 * script installs a pinned schemathesis into a cached venv (node_modules/.cache/lagoon/venv) on first use; a
 * failed install fails this test. It is skipped only on a machine without python3.
 */

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fuzz/schemathesis.sh');
const python = spawnSync('python3', ['--version'], { encoding: 'utf8' });
const hasPython = python.error === undefined && python.status === 0;
if (!hasPython) {
  console.warn(
    'SKIPPED test/integration/schemathesis.test.ts: no python3 on this machine (schemathesis is a Python tool; .ci/run installs python3 and python3-venv)',
  );
}

describe.skipIf(!hasPython)('schemathesis against /openapi.json', () => {
  let node: NodeProc;
  let stopAll: () => Promise<void>;

  beforeAll(async () => {
    const started = await startNodes(1, { env: { LAGOON_HEARTBEAT_MS: '0' } });
    node = started.nodes[0]!;
    stopAll = started.stopAll;
  });
  afterAll(async () => {
    await stopAll?.();
  });

  it('finds no server error, undocumented answer or accepted invalid input', {
    timeout: 900_000,
  }, async () => {
    expect(node.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn('bash', [SCRIPT, node.url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (c) => {
        output += c;
      });
      child.stderr.on('data', (c) => {
        output += c;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, output }));
    });
    const summary = output
      .split('\n')
      .filter((l) => /generated|passed|failed|error|Seed|installing/i.test(l));
    console.log(`schemathesis: ${summary.slice(-12).join('\n')}`);
    expect(code, output.slice(-20_000)).toBe(0);
    expect(output).toMatch(/\d+ generated, \d+ passed/);
  });
});
