import fs from 'node:fs';
import path from 'node:path';
import { renderSummary, type SummaryRow } from '../chaos/report.js';
import { runChaos } from '../chaos/runner.js';
import { isScenario, SCENARIO_DESCRIPTIONS, SCENARIOS, type ScenarioName } from '../chaos/scenarios.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { intFlag } from './args.js';
import type { CliIo } from './io.js';

/** Flags of `lagoon chaos`. */
export interface ChaosFlags {
  seed?: string | undefined;
  duration?: string | undefined;
  rate?: string | undefined;
  attach?: boolean | undefined;
  out?: string | undefined;
  'data-dir'?: string | undefined;
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');

/** Usage of `lagoon chaos`, with the scenarios. */
export function chaosUsage(): string {
  return [
    'lagoon chaos SCENARIO|all [--seed N] [--duration S] [--rate R] [--attach] [--out DIR]',
    '',
    'Scenarios:',
    ...SCENARIOS.map((s) => `  ${s.padEnd(20)} ${SCENARIO_DESCRIPTIONS[s]}`),
    '',
    'Starts its own 3-broker cluster and 3 nodes (or, with --attach, uses a running `lagoon up`), runs',
    'load, injects the faults on a seeded schedule, heals, settles, checks the history and writes',
    'report.json, report.md, plot.svg and history.json. Exits 0 only if every checker is valid;',
    'the last line printed is the path of report.json (summary.json for `all`).',
  ].join('\n');
}

/**
 * `lagoon chaos SCENARIO|all`: runs one scenario (or all, in sequence) and prints the report's path as its
 * last line; exit 0 only when the verdict is valid. Ctrl-C / SIGTERM stop the run and everything it started.
 */
export async function chaosCommand(
  scenario: string | undefined,
  flags: ChaosFlags,
  io: CliIo,
): Promise<number> {
  if (scenario === undefined || (scenario !== 'all' && !isScenario(scenario))) {
    throw new LagoonError(
      'bad_argument',
      `${scenario === undefined ? 'Name a scenario' : `Unknown scenario '${scenario}'`}.\n${chaosUsage()}`,
    );
  }
  const seed = intFlag('seed', flags.seed, Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1);
  const durationS = intFlag('duration', flags.duration, 60, 5, 24 * 3600);
  const rate = intFlag('rate', flags.rate, 150, 1, 10_000);
  const dataDir = path.resolve(flags['data-dir'] ?? DEFAULTS.dataDir);
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    io.err('Interrupted: stopping the run and everything it started (again to force)…');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const run = async (s: ScenarioName, outDir: string) =>
      runChaos({
        scenario: s,
        seed,
        durationS,
        rate,
        attach: flags.attach === true,
        dataDir,
        outDir,
        progress: (line) => io.err(line),
        signal: ac.signal,
      });
    if (scenario !== 'all') {
      const outDir = path.resolve(flags.out ?? path.join(dataDir, 'chaos', `${scenario}-${stamp()}`));
      const r = await run(scenario, outDir);
      io.err(verdictLine(scenario, r.report.valid, r.report.checkers));
      io.out(r.reportPath);
      return r.report.valid === true ? 0 : 1;
    }
    const allDir = path.resolve(flags.out ?? path.join(dataDir, 'chaos', `all-${stamp()}`));
    const rows: SummaryRow[] = [];
    for (const s of SCENARIOS) {
      if (ac.signal.aborted) break;
      io.err(`\n=== ${s}`);
      try {
        const r = await run(s, path.join(allDir, s));
        io.err(verdictLine(s, r.report.valid, r.report.checkers));
        rows.push({
          scenario: s,
          valid: r.report.valid,
          reportPath: path.relative(allDir, r.reportPath),
          failed: r.report.checkers.filter((c) => c.valid !== true).map((c) => c.name),
          writes: r.report.counts.write,
          failoverMs: r.report.failoverMs,
        });
      } catch (e) {
        io.err(`${s}: ${(e as Error).message}`);
        rows.push({
          scenario: s,
          valid: false,
          reportPath: '–',
          failed: [],
          writes: { ok: 0, fail: 0, unknown: 0 },
          failoverMs: null,
          error: (e as Error).message.split('\n')[0] ?? 'error',
        });
      }
    }
    fs.mkdirSync(allDir, { recursive: true });
    const summaryPath = path.join(allDir, 'summary.json');
    fs.writeFileSync(summaryPath, `${JSON.stringify({ seed, durationS, rate, scenarios: rows }, null, 2)}\n`);
    fs.writeFileSync(path.join(allDir, 'summary.md'), renderSummary(rows));
    io.out(summaryPath);
    return rows.length === SCENARIOS.length && rows.every((r) => r.valid === true) ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function verdictLine(
  scenario: string,
  valid: boolean | 'unknown',
  checks: ReadonlyArray<{ name: string; valid: boolean | 'unknown' }>,
): string {
  const bad = checks.filter((c) => c.valid !== true).map((c) => `${c.name}=${c.valid}`);
  return `${scenario}: ${valid === true ? 'VALID' : valid === false ? 'INVALID' : 'UNKNOWN'}${bad.length ? ` (${bad.join(', ')})` : ''}`;
}
