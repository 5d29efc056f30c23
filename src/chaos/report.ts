import type { CheckResult, FaultWindow, History, HistoryOp, Outcome } from './history.js';

/**
 * The chaos report, built from a recorded history and the checkers' verdicts: counts, availability and
 * recovery per fault window, latency percentiles, and the Markdown summary. Pure: no I/O, no clock.
 */

/** A fault window as the runner saw it: the history's window plus what only the runner knows. */
export interface FaultDetail {
  window: FaultWindow;
  /** When healing began (restart / SIGCONT / proxy cleared); the window ends when healing is done. */
  healStartAt: number;
  /** Partitions whose leader the fault hit (empty for node faults and the whole cluster). */
  affectedPartitions: number[];
  description: string;
}

/** One sample of a node's replica lag (sum over partitions), or null when the node did not answer. */
export interface LagSample {
  at: number;
  node: string;
  lagRecords: number | null;
}

/** Everything the report is built from. */
export interface ReportInput {
  scenario: string;
  seed: number;
  durationS: number;
  rate: number;
  /** Wall-clock start, ISO 8601. */
  startedAt: string;
  history: History;
  checks: CheckResult[];
  faults: FaultDetail[];
  lag: LagSample[];
  /** Arrivals the load dropped because too many requests were in flight. */
  skipped: number;
  notes: string[];
}

/** Counts of outcomes. */
export type OutcomeCounts = Record<Outcome, number>;

/** Latency percentiles in ms over completed ops (null when there were none). */
export interface Latency {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** One fault window in the report; times are seconds since the run started. */
export interface FaultSummary {
  kind: string;
  target: string;
  description: string;
  startS: number;
  healS: number;
  endS: number;
  affectedPartitions: number[];
  /** Writes invoked in the window, 412 verdicts apart. */
  writes: OutcomeCounts;
  /** Conditional writes answered 412 in the window. */
  rejected: number;
  reads: OutcomeCounts;
  /** ok writes / writes invoked in the window, 412s apart (null when none were). */
  writeAvailability: number | null;
  readAvailability: number | null;
  writeLatency: Latency;
  /** Fault start → completion of the first ok write on an affected partition invoked after the start. */
  failoverMs: number | null;
  /** Heal start → completion of the first ok write (on an affected partition, if any) invoked after it. */
  recoveryMs: number | null;
}

/** report.json. */
export interface ChaosReport {
  scenario: string;
  seed: number;
  durationS: number;
  rate: number;
  startedAt: string;
  /** false if any checker is false; 'unknown' if any is unknown and none false; else true. */
  valid: boolean | 'unknown';
  checkers: CheckResult[];
  counts: {
    write: OutcomeCounts;
    delete: OutcomeCounts;
    conditional: OutcomeCounts;
    read: Record<string, OutcomeCounts>;
    skipped: number;
  };
  latency: { write: Latency; writeDuringFaults: Latency; read: Record<string, Latency> };
  faults: FaultSummary[];
  /** The longest failover over all windows (ms), null when none was measured. */
  failoverMs: number | null;
  notes: string[];
}

/** The run's verdict from the checkers' verdicts. */
export function overallValid(checks: readonly CheckResult[]): boolean | 'unknown' {
  if (checks.some((c) => c.valid === false)) return false;
  if (checks.some((c) => c.valid === 'unknown')) return 'unknown';
  return true;
}

/** Nearest-rank percentile of `xs` (unsorted), null for an empty list. */
export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

/** Percentiles of the ops' latencies (completed ops only). */
export function latencyOf(ops: readonly HistoryOp[]): Latency {
  const ms = ops.filter((o) => o.completeAt !== undefined).map((o) => o.completeAt! - o.invokeAt);
  const r = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  return {
    n: ms.length,
    p50: r(percentile(ms, 50)),
    p99: r(percentile(ms, 99)),
    max: r(percentile(ms, 100)),
  };
}

/** ok / fail / unknown counts. */
export function countOutcomes(ops: readonly HistoryOp[]): OutcomeCounts {
  const c: OutcomeCounts = { ok: 0, fail: 0, unknown: 0 };
  for (const o of ops) c[o.outcome]++;
  return c;
}

const partitionOfOp = (o: HistoryOp): number | undefined =>
  o.kind === 'read' ? o.partition : o.version !== undefined ? Number(o.version.split('-')[0]) : undefined;

/**
 * First ok plain-or-conditional write invoked at or after `from` (on `partitions` if given; a write's
 * partition is known from its version, so a partition filter only sees ok writes — which is all it needs).
 * Returns ms from `from` to its completion.
 */
export function firstOkWriteAfter(
  ops: readonly HistoryOp[],
  from: number,
  partitions?: readonly number[],
): number | null {
  let best: number | null = null;
  for (const o of ops) {
    if (o.kind !== 'write' || o.outcome !== 'ok' || o.invokeAt < from || o.completeAt === undefined) continue;
    if (partitions && partitions.length > 0 && !partitions.includes(partitionOfOp(o) ?? -1)) continue;
    const d = o.completeAt - from;
    if (best === null || d < best) best = d;
  }
  return best === null ? null : Math.round(best);
}

const ratio = (c: OutcomeCounts): number | null => {
  const n = c.ok + c.fail + c.unknown;
  return n === 0 ? null : Math.round((c.ok / n) * 10_000) / 10_000;
};

/** Builds report.json's content. */
export function buildReport(input: ReportInput): ChaosReport {
  const { history } = input;
  const t0 = history.startAt;
  const s = (t: number) => Math.round(t - t0) / 1000;
  const writes = history.ops.filter((o) => o.kind === 'write');
  const reads = history.ops.filter((o) => o.kind === 'read');
  const plain = writes.filter((w) => w.value !== null && !w.ifMatch && !w.ifNoneMatch);
  const deletes = writes.filter((w) => w.value === null && !w.ifMatch && !w.ifNoneMatch);
  const conditional = writes.filter((w) => w.ifMatch !== undefined || w.ifNoneMatch);
  const levels = [...new Set(reads.map((r) => r.consistency))].sort();
  const inAnyFault = (o: HistoryOp) =>
    history.faults.some((f) => o.invokeAt >= f.startAt && o.invokeAt <= f.endAt);
  const faults: FaultSummary[] = input.faults.map((f) => {
    const w = f.window;
    const inside = (o: HistoryOp) => o.invokeAt >= w.startAt && o.invokeAt <= w.endAt;
    const ws = writes.filter(inside);
    const rs = reads.filter(inside);
    // A 412 is the store's answer to a condition: served, but neither an ok write nor an outage.
    const wc = countOutcomes(ws.filter((x) => x.verdict !== 'rejected'));
    const rc = countOutcomes(rs);
    return {
      kind: w.kind,
      target: w.target,
      description: f.description,
      startS: s(w.startAt),
      healS: s(f.healStartAt),
      endS: s(w.endAt),
      affectedPartitions: f.affectedPartitions,
      writes: wc,
      rejected: ws.filter((x) => x.verdict === 'rejected').length,
      reads: rc,
      writeAvailability: ratio(wc),
      readAvailability: ratio(rc),
      writeLatency: latencyOf(ws),
      failoverMs: firstOkWriteAfter(history.ops, w.startAt, f.affectedPartitions),
      recoveryMs: firstOkWriteAfter(history.ops, f.healStartAt, f.affectedPartitions),
    };
  });
  const failovers = faults.map((f) => f.failoverMs).filter((x): x is number => x !== null);
  return {
    scenario: input.scenario,
    seed: input.seed,
    durationS: input.durationS,
    rate: input.rate,
    startedAt: input.startedAt,
    valid: overallValid(input.checks),
    checkers: input.checks,
    counts: {
      write: countOutcomes(plain),
      delete: countOutcomes(deletes),
      conditional: countOutcomes(conditional),
      read: Object.fromEntries(
        levels.map((l) => [l, countOutcomes(reads.filter((r) => r.consistency === l))]),
      ),
      skipped: input.skipped,
    },
    latency: {
      write: latencyOf(writes),
      writeDuringFaults: latencyOf(writes.filter(inAnyFault)),
      read: Object.fromEntries(levels.map((l) => [l, latencyOf(reads.filter((r) => r.consistency === l))])),
    },
    faults,
    failoverMs: failovers.length > 0 ? Math.max(...failovers) : null,
    notes: input.notes,
  };
}

const fmt = (x: number | null | undefined, unit = '') =>
  x === null || x === undefined ? '–' : `${x}${unit}`;
const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
const cnt = (c: OutcomeCounts) => `${c.ok} / ${c.fail} / ${c.unknown}`;

/** report.md: the human summary. */
export function renderMarkdown(r: ChaosReport): string {
  const verdict = r.valid === true ? '**valid**' : r.valid === false ? '**INVALID**' : '**unknown**';
  const lines: string[] = [
    `# Chaos run: ${r.scenario}`,
    '',
    `Seed ${r.seed}, ${r.durationS} s of load at ${r.rate} ops/s over three nodes, started ${r.startedAt}. Verdict: ${verdict}.`,
    '',
    '## Checkers',
    '',
    '| Checker | Valid | Figures | First counter-examples |',
    '|---|---|---|---|',
    ...r.checkers.map(
      (c) =>
        `| ${c.name} | ${c.valid === true ? 'yes' : c.valid === false ? '**NO**' : 'unknown'} | ${Object.entries(
          c.stats,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} | ${c.errors.slice(0, 3).map(mdCell).join('<br>') || '–'} |`,
    ),
    '',
    '## Operations (ok / fail / unknown)',
    '',
    '| Kind | ok / fail / unknown | p50 ms | p99 ms |',
    '|---|---|---|---|',
    `| put | ${cnt(r.counts.write)} | | |`,
    `| delete | ${cnt(r.counts.delete)} | | |`,
    `| conditional write | ${cnt(r.counts.conditional)} | | |`,
    `| all writes | | ${fmt(r.latency.write.p50)} | ${fmt(r.latency.write.p99)} |`,
    `| writes during faults | | ${fmt(r.latency.writeDuringFaults.p50)} | ${fmt(r.latency.writeDuringFaults.p99)} |`,
    ...Object.entries(r.counts.read).map(
      ([l, c]) =>
        `| read (${l}) | ${cnt(c)} | ${fmt(r.latency.read[l]?.p50)} | ${fmt(r.latency.read[l]?.p99)} |`,
    ),
    '',
    r.counts.skipped > 0 ? `${r.counts.skipped} arrivals were skipped (too many requests in flight).\n` : '',
    '## Fault windows',
    '',
    '| Fault | Target | Window (s) | Writes ok / fail / unknown (+ 412s) | Write availability | Read availability | Write p99 ms | Failover ms | Recovery after heal ms |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.faults.map(
      (f) =>
        `| ${f.kind}: ${mdCell(f.description)} | ${f.target} | ${f.startS}–${f.healS}${f.endS !== f.healS ? ` (healed ${f.endS})` : ''} | ${cnt(f.writes)} (+ ${f.rejected}) | ${pct(f.writeAvailability)} | ${pct(f.readAvailability)} | ${fmt(f.writeLatency.p99)} | ${fmt(f.failoverMs)} | ${fmt(f.recoveryMs)} |`,
    ),
    '',
    `Failover (fault start → first acknowledged write on an affected partition): ${fmt(r.failoverMs, ' ms')}.`,
    '',
    '![latency, throughput, errors and replica lag](plot.svg)',
    '',
  ];
  if (r.notes.length > 0) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return lines.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n');
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** One line per scenario of a `lagoon chaos all` run. */
export interface SummaryRow {
  scenario: string;
  valid: boolean | 'unknown';
  reportPath: string;
  failed: string[];
  writes: OutcomeCounts;
  failoverMs: number | null;
  error?: string;
}

/** summary.md of `lagoon chaos all`. */
export function renderSummary(rows: readonly SummaryRow[]): string {
  return [
    '# Chaos: all scenarios',
    '',
    '| Scenario | Valid | Failed checkers | Writes ok / fail / unknown | Failover ms | Report |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.valid === true ? 'yes' : r.valid === false ? '**NO**' : 'unknown'} | ${r.error ? mdCell(r.error) : r.failed.join(', ') || '–'} | ${cnt(r.writes)} | ${fmt(r.failoverMs)} | ${r.reportPath} |`,
    ),
    '',
  ].join('\n');
}
