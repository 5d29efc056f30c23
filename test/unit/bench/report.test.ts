import { describe, expect, it } from 'vitest';
import { foldProfile } from '../../../src/bench/profile.js';
import { alternate, FIGURES, figure, markdownTable, median } from '../../../src/bench/report.js';

const spec = (name: string) => FIGURES.find((f) => f.name === name)!;

describe('bench report', () => {
  it('takes medians of each side and judges the goal by the ratio', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    const f = figure(spec('write_throughput'), { ours: [900, 1100], anchor: [4000, 3000, 5000] });
    expect(f).toMatchObject({ ours: 1000, anchor: 4000, ratio: 0.25, met: false, unit: 'req/s' });
    expect(figure(spec('write_throughput'), { ours: [2000], anchor: [4000] }).met).toBe(true);
  });

  it('judges lower-is-better figures and absolute goals the right way round', () => {
    expect(figure(spec('e2e_lag_p99'), { ours: [30], anchor: [10] })).toMatchObject({ ratio: 3, met: true });
    expect(figure(spec('e2e_lag_p99'), { ours: [31], anchor: [10] }).met).toBe(false);
    // A zero anchor has no ratio; the idle goal is on ours itself.
    const idle = figure(spec('idle_records_per_s'), { ours: [0.47], anchor: [0] });
    expect(idle).toMatchObject({ ratio: null, met: true, ours: 0.47 });
    expect(figure(spec('idle_records_per_s'), { ours: [1.2], anchor: [0] }).met).toBe(false);
    // A side missing (NaN measurements) cannot be judged.
    expect(figure(spec('cpu_per_write'), { ours: [Number.NaN], anchor: [10] })).toMatchObject({
      ours: null,
      met: null,
    });
  });

  it('alternates anchor and ours, beginning and ending with the anchor', async () => {
    const order: string[] = [];
    let i = 0;
    const r = await alternate(
      2,
      async () => {
        order.push('A');
        return i++;
      },
      async () => {
        order.push('B');
        return 100 + i++;
      },
    );
    expect(order).toEqual(['A', 'B', 'A', 'B', 'A']);
    expect(r).toEqual({ anchor: [0, 2, 4], ours: [101, 103] });
  });

  it('prints one table row per measured figure, in the issue’s order', () => {
    const md = markdownTable({
      e2e_lag_p99: figure(spec('e2e_lag_p99'), { ours: [40], anchor: [10] }),
      write_throughput: figure(spec('write_throughput'), { ours: [1500], anchor: [3000] }),
    });
    const rows = md.split('\n').slice(2);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(
      /^\| write_throughput \| 1,500 \| 3,000 \| req\/s \| 0.5 \| ratio ≥ 0.5 \| yes \|$/,
    );
    expect(rows[1]).toMatch(/^\| e2e_lag_p99 \| 40 \| 10 \| ms \| 4 \| .* \| \*\*no\*\* \|$/);
  });
});

describe('bench CPU profiles', () => {
  it('folds samples into root-to-leaf stacks and counts self time at the leaf', () => {
    const frame = (id: number, name: string, children: number[] = []) => ({
      id,
      callFrame: { functionName: name, url: `file:///x/src/${name}.ts`, lineNumber: 0 },
      children,
    });
    const p = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2] },
        frame(2, 'main', [3, 4]),
        frame(3, 'parse'),
        frame(4, 'write'),
      ],
      samples: [3, 3, 4, 2, 3],
      startTime: 0,
      endTime: 5e6,
    };
    const { folded, self, total } = foldProfile(p);
    expect(total).toBe(5);
    expect(folded.get('main src/main.ts:1;parse src/parse.ts:1')).toBe(3);
    expect(folded.get('main src/main.ts:1;write src/write.ts:1')).toBe(1);
    expect(folded.get('main src/main.ts:1')).toBe(1);
    expect(self.get('parse src/parse.ts:1')).toBe(3);
  });
});
