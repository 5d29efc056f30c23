import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WriteOp } from '../../src/chaos/history.js';
import { type ChaosResult, runChaos } from '../../src/chaos/runner.js';
import type { ScenarioName } from '../../src/chaos/scenarios.js';

/** The chaos suite's load: ~150 ops/s over three nodes (SPEC's availability goal), 30 s, a fixed seed. */
export const RATE = 150;
export const DURATION_S = 30;
export const SEED = 20261128;

/** Runs one scenario on its own cluster; the report stays in a temp dir whose path is printed. */
export async function run(
  scenario: ScenarioName,
  opts: {
    durationS?: number;
    settleTimeoutMs?: number;
    nodeEnv?: (index: number) => Record<string, string>;
  } = {},
): Promise<ChaosResult> {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), `lagoon-chaos-${scenario}-`));
  const r = await runChaos({
    scenario,
    seed: SEED,
    durationS: opts.durationS ?? DURATION_S,
    rate: RATE,
    outDir,
    ...(opts.nodeEnv ? { nodeEnv: opts.nodeEnv } : {}),
    ...(opts.settleTimeoutMs ? { settleTimeoutMs: opts.settleTimeoutMs } : {}),
    progress: (line) => process.stderr.write(`[${scenario}] ${line}\n`),
  });
  process.stderr.write(`[${scenario}] report: ${r.reportPath}\n`);
  return r;
}

/** Writes of the run (plain, deletes and conditional). */
export const writesOf = (r: ChaosResult): WriteOp[] =>
  r.history.ops.filter((o): o is WriteOp => o.kind === 'write');

/** Definitely failed writes, 412 verdicts apart (those are answers, not failures). */
export const failedWrites = (r: ChaosResult): WriteOp[] =>
  writesOf(r).filter((w) => w.outcome === 'fail' && w.verdict !== 'rejected');

/** One line of figures for the log: write p99 during the faults and the failover time (not asserted). */
export function figures(r: ChaosResult): string {
  const rep = r.report;
  return (
    `${rep.scenario}: valid=${rep.valid}; writes ok/fail/unknown ${rep.counts.write.ok}/${rep.counts.write.fail}/${rep.counts.write.unknown}; ` +
    `write p99 ${rep.latency.write.p99} ms, during faults ${rep.latency.writeDuringFaults.p99} ms; failover ${rep.failoverMs} ms; ` +
    `failed checkers: ${
      rep.checkers
        .filter((c) => c.valid !== true)
        .map((c) => `${c.name} (${c.errors.slice(0, 2).join(' / ')})`)
        .join('; ') || 'none'
    }`
  );
}
