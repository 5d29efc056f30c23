/**
 * The pure part of `lagoon bench`: A/B/A rounds to medians and ratios, goals, and the Markdown table.
 * Everything here is a function of measured numbers (unit-tested on its own).
 */

export interface Figure {
  ours: number | null;
  anchor: number | null;
  unit: string;
  /** ours / anchor, 2 decimals; null when either side is missing or the anchor is 0. */
  ratio: number | null;
  goal: string;
  /** Whether the goal is met; null when it cannot be judged (a side missing). */
  met: boolean | null;
  /** Every measured round, in order, so the medians can be checked. */
  rounds: { ours: number[]; anchor: number[] };
  note?: string;
}

export interface FigureSpec {
  name: string;
  unit: string;
  /** For ratio goals: the ratio must be ≥ min (higher is better) or ≤ max (lower is better). */
  ratioMin?: number;
  ratioMax?: number;
  /** For an absolute goal on ours (e.g. idle records/s per partition ≤ 1). */
  oursMax?: number;
  note?: string;
}

/** The figures the bench reports, in table order, with their goals (issue #9). */
export const FIGURES: readonly FigureSpec[] = [
  { name: 'write_throughput', unit: 'req/s', ratioMin: 0.5 },
  { name: 'producer_throughput', unit: 'msg/s', ratioMin: 0.7 },
  { name: 'rest_vs_producer', unit: 'req/s vs msg/s', ratioMin: 0.5 },
  { name: 'apply_rate', unit: 'rows/s', ratioMin: 0.5 },
  { name: 'e2e_lag_p99', unit: 'ms', ratioMax: 3 },
  { name: 'read_eventual_throughput', unit: 'req/s', ratioMin: 0.8 },
  { name: 'cpu_per_write', unit: 'CPU µs/write', ratioMax: 1.5 },
  { name: 'idle_records_per_s', unit: 'records/s per partition', oursMax: 1 },
];

export function median(xs: readonly number[]): number | null {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** A figure from its rounds: medians of each side, their ratio, the goal judged. */
export function figure(spec: FigureSpec, rounds: { ours: number[]; anchor: number[] }): Figure {
  const o = median(rounds.ours);
  const a = median(rounds.anchor);
  const ratio = o !== null && a !== null && a !== 0 ? round(o / a, 2) : null;
  let goal: string;
  let met: boolean | null;
  if (spec.oursMax !== undefined) {
    goal = `ours ≤ ${spec.oursMax}`;
    met = o === null ? null : o <= spec.oursMax;
  } else if (spec.ratioMax !== undefined) {
    goal = `ratio ≤ ${spec.ratioMax} (lower is better)`;
    met = ratio === null ? null : ratio <= spec.ratioMax;
  } else {
    goal = `ratio ≥ ${spec.ratioMin ?? 1}`;
    met = ratio === null ? null : ratio >= (spec.ratioMin ?? 1);
  }
  const digits = (x: number) => (Math.abs(x) >= 100 ? 0 : 2);
  return {
    ours: o === null ? null : round(o, digits(o)),
    anchor: a === null ? null : round(a, digits(a)),
    unit: spec.unit,
    ratio,
    goal,
    met,
    rounds,
    ...(spec.note ? { note: spec.note } : {}),
  };
}

/**
 * Runs A/B/A…: anchor and ours alternate, starting and ending with the anchor (`pairs` = number of ours
 * rounds; anchor rounds = pairs + 1), so a drift of the shared machine shows up on both sides.
 */
export async function alternate(
  pairs: number,
  anchor: () => Promise<number>,
  ours: () => Promise<number>,
): Promise<{ ours: number[]; anchor: number[] }> {
  const r = { ours: [] as number[], anchor: [] as number[] };
  r.anchor.push(await anchor());
  for (let i = 0; i < pairs; i++) {
    r.ours.push(await ours());
    r.anchor.push(await anchor());
  }
  return r;
}

const fmt = (x: number | null) => (x === null ? '–' : x.toLocaleString('en-US'));

/** The Markdown table of a run's figures (docs/benchmarks.md carries one from a real run). */
export function markdownTable(figures: Record<string, Figure>): string {
  const lines = ['| figure | ours | anchor | unit | ratio | goal | met |', '|---|---|---|---|---|---|---|'];
  for (const spec of FIGURES) {
    const f = figures[spec.name];
    if (!f) continue;
    const met = f.met === null ? '–' : f.met ? 'yes' : '**no**';
    lines.push(
      `| ${spec.name} | ${fmt(f.ours)} | ${fmt(f.anchor)} | ${f.unit} | ${fmt(f.ratio)} | ${f.goal} | ${met} |`,
    );
  }
  return lines.join('\n');
}
