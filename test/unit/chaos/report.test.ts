import { describe, expect, it } from 'vitest';
import type { CheckResult, History, HistoryOp } from '../../../src/chaos/history.js';
import { niceMax, plotSeries, renderPlot } from '../../../src/chaos/plot.js';
import {
  buildReport,
  firstOkWriteAfter,
  latencyOf,
  overallValid,
  percentile,
  renderMarkdown,
  renderSummary,
} from '../../../src/chaos/report.js';

const check = (name: string, valid: boolean | 'unknown', errors: string[] = []): CheckResult => ({
  name,
  valid,
  errors,
  stats: { ops: 3 },
});

let id = 0;
const w = (
  at: number,
  ms: number,
  outcome: HistoryOp['outcome'],
  version?: string,
  extra: object = {},
): HistoryOp => ({
  kind: 'write',
  id: id++,
  process: 0,
  node: 'node-1',
  key: 'k',
  value: id,
  invokeAt: at,
  completeAt: at + ms,
  outcome,
  ...(version ? { version } : {}),
  ...extra,
});
const r = (
  at: number,
  ms: number,
  outcome: HistoryOp['outcome'],
  consistency: 'eventual' | 'strong',
): HistoryOp => ({
  kind: 'read',
  id: id++,
  process: 1,
  node: 'node-2',
  key: 'k',
  consistency,
  partition: 2,
  invokeAt: at,
  completeAt: at + ms,
  outcome,
  value: null,
});

function history(): History {
  const t0 = 1_000_000;
  return {
    startAt: t0,
    endAt: t0 + 30_000,
    partitions: 6,
    finals: [],
    faults: [{ kind: 'broker-kill', target: 'broker-2', startAt: t0 + 10_000, endAt: t0 + 20_000 }],
    ops: [
      w(t0 + 1000, 5, 'ok', '2-0'),
      w(t0 + 2000, 7, 'ok', '3-0'),
      w(t0 + 10_100, 3000, 'ok', '3-1'), // other partition: not the failover
      w(t0 + 10_200, 5000, 'unknown'),
      w(t0 + 10_500, 1500, 'ok', '2-1'), // affected partition 2: failover 2000 ms
      w(t0 + 11_000, 10, 'fail', undefined, { status: 503 }),
      w(t0 + 16_000, 10, 'ok', '2-2', { ifNoneMatch: true, verdict: 'applied' }),
      w(t0 + 21_000, 10, 'ok', '2-3'), // after heal start at 20 s: recovery 1010 ms
      r(t0 + 12_000, 2, 'ok', 'eventual'),
      r(t0 + 12_000, 2, 'fail', 'strong'),
    ],
  };
}

describe('report', () => {
  it('percentiles and latency', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    expect(latencyOf([w(0, 10, 'ok'), w(0, 20, 'ok')])).toEqual({ n: 2, p50: 10, p99: 20, max: 20 });
  });

  it('verdict: false beats unknown beats true', () => {
    expect(overallValid([check('a', true), check('b', true)])).toBe(true);
    expect(overallValid([check('a', true), check('b', 'unknown')])).toBe('unknown');
    expect(overallValid([check('a', false), check('b', 'unknown')])).toBe(false);
    expect(overallValid([])).toBe(true);
  });

  it('failover and recovery per fault window', () => {
    const h = history();
    expect(firstOkWriteAfter(h.ops, h.startAt + 10_000, [2])).toBe(2000);
    expect(firstOkWriteAfter(h.ops, h.startAt + 10_000)).toBe(2000);
    expect(firstOkWriteAfter(h.ops, h.startAt + 10_000, [3])).toBe(3100);
    expect(firstOkWriteAfter(h.ops, h.startAt + 40_000)).toBeNull();
    const rep = buildReport({
      scenario: 'broker-kill',
      seed: 1,
      durationS: 30,
      rate: 150,
      startedAt: '2026-11-28T00:00:00.000Z',
      history: h,
      checks: [check('no-lost-writes', true), check('linearizable', false, ['op 3 | read a stale value'])],
      faults: [
        {
          window: h.faults[0]!,
          healStartAt: h.startAt + 20_000,
          affectedPartitions: [2],
          description: 'SIGKILL leader of partition 2 (broker 2)',
        },
      ],
      lag: [],
      skipped: 0,
      notes: ['a note'],
    });
    expect(rep.valid).toBe(false);
    expect(rep.counts.write).toEqual({ ok: 5, fail: 1, unknown: 1 });
    expect(rep.counts.conditional).toEqual({ ok: 1, fail: 0, unknown: 0 });
    expect(rep.counts.read).toEqual({
      eventual: { ok: 1, fail: 0, unknown: 0 },
      strong: { ok: 0, fail: 1, unknown: 0 },
    });
    const f = rep.faults[0]!;
    expect(f.writes).toEqual({ ok: 3, fail: 1, unknown: 1 });
    expect(f.writeAvailability).toBe(0.6);
    expect(f.readAvailability).toBe(0.5);
    expect(f.failoverMs).toBe(2000);
    expect(f.recoveryMs).toBe(1010);
    expect([f.startS, f.healS, f.endS]).toEqual([10, 20, 20]);
    expect(rep.failoverMs).toBe(2000);
    expect(rep.latency.writeDuringFaults.n).toBe(5);
    expect(rep.latency.writeDuringFaults.p99).toBe(5000);
    const md = renderMarkdown(rep);
    expect(md).toContain('# Chaos run: broker-kill');
    expect(md).toContain('**INVALID**');
    expect(md).toContain('op 3 \\| read a stale value');
    expect(md).toContain('| 60.0% |');
    expect(md).toContain('plot.svg');
    expect(md).toContain('- a note');
    expect(JSON.parse(JSON.stringify(rep))).toEqual(rep);
  });

  it('summary of all scenarios', () => {
    const md = renderSummary([
      {
        scenario: 'broker-kill',
        valid: true,
        reportPath: 'broker-kill/report.json',
        failed: [],
        writes: { ok: 1, fail: 0, unknown: 0 },
        failoverMs: 900,
      },
      {
        scenario: 'slow-broker',
        valid: false,
        reportPath: '–',
        failed: [],
        writes: { ok: 0, fail: 0, unknown: 0 },
        failoverMs: null,
        error: 'boom',
      },
    ]);
    expect(md).toContain('| broker-kill | yes | – | 1 / 0 / 0 | 900 | broker-kill/report.json |');
    expect(md).toContain('| slow-broker | **NO** | boom |');
  });
});

describe('plot', () => {
  it('buckets per second', () => {
    const h = history();
    const s = plotSeries({
      title: 't',
      startAt: h.startAt,
      endAt: h.endAt,
      ops: h.ops,
      faults: h.faults,
      lag: [],
    });
    expect(s.seconds).toBe(30);
    expect(s.okWrites[10]).toBe(2);
    expect(s.unknowns[10]).toBe(1);
    expect(s.fails[11]).toBe(1);
    expect(s.fails[12]).toBe(1);
    expect(s.okReads[12]).toBe(1);
    expect(s.p99[10]).toBe(5000);
    expect(s.p50[5]).toBeNull();
  });

  it('renders a well-formed SVG with the fault shaded and every panel', () => {
    const h = history();
    const svg = renderPlot({
      title: 'broker-kill <seed 1>',
      startAt: h.startAt,
      endAt: h.endAt,
      ops: h.ops,
      faults: h.faults,
      lag: [
        { at: h.startAt + 1000, node: 'node-1', lagRecords: 0 },
        { at: h.startAt + 2000, node: 'node-1', lagRecords: 12 },
        { at: h.startAt + 3000, node: 'node-1', lagRecords: null },
        { at: h.startAt + 2000, node: 'node-2', lagRecords: 3 },
      ],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('broker-kill &lt;seed 1&gt;');
    for (const t of ['Write latency', 'Throughput', 'Errors per second', 'Replica lag'])
      expect(svg).toContain(t);
    expect(svg.match(/<title>broker-kill broker-2<\/title>/g)).toHaveLength(4);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    // every opened element is closed (a cheap well-formedness check)
    const open = (svg.match(/<(rect|text|path|circle|line|svg)\b[^>]*[^/]>/g) ?? []).length;
    const close = (svg.match(/<\/(rect|text|path|circle|line|svg)>/g) ?? []).length;
    expect(open).toBe(close);
  });

  it('niceMax', () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(130)).toBe(200);
    expect(niceMax(2100)).toBe(2500);
  });
});
