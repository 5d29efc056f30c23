import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../../infra/promlint');
const BIN = path.resolve(import.meta.dirname, '../../node_modules/.cache/lagoon/promlint');

/**
 * Runs Prometheus' own exposition parser and linter (client_golang promlint, what `promtool check
 * metrics` uses) over `text`; returns its problems, one per line (empty when clean).
 * The tiny Go program in infra/promlint is built on first use (.ci/run builds it up front).
 */
export function promlint(text: string): string[] {
  if (!fs.existsSync(BIN)) {
    fs.mkdirSync(path.dirname(BIN), { recursive: true });
    execFileSync('go', ['build', '-o', BIN, '.'], { cwd: SRC, stdio: 'inherit' });
  }
  const r = spawnSync(BIN, [], { input: text, encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}
