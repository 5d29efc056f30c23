import type { FaultWindow, HistoryOp } from './history.js';
import type { LagSample } from './report.js';
import { percentile } from './report.js';

/**
 * plot.svg of a chaos run, drawn by hand (no dependency): four stacked panels over the run's time —
 * write latency (every op as a dot, per-second p50/p99 lines, log scale), throughput (ok ops/s),
 * errors per second (fail, unknown), and each node's replica lag — with the fault windows shaded. Pure.
 */

/** What the plot is drawn from. */
export interface PlotInput {
  title: string;
  startAt: number;
  endAt: number;
  ops: readonly HistoryOp[];
  faults: readonly FaultWindow[];
  lag: readonly LagSample[];
}

/** Per-second series, the plot's data (exported for tests). */
export interface PlotSeries {
  seconds: number;
  okWrites: number[];
  okReads: number[];
  fails: number[];
  unknowns: number[];
  p50: Array<number | null>;
  p99: Array<number | null>;
}

/** Buckets the ops by invocation second. */
export function plotSeries(input: PlotInput): PlotSeries {
  const seconds = Math.max(1, Math.ceil((input.endAt - input.startAt) / 1000));
  const z = () => new Array<number>(seconds).fill(0);
  const okWrites = z();
  const okReads = z();
  const fails = z();
  const unknowns = z();
  const lat: number[][] = Array.from({ length: seconds }, () => []);
  for (const o of input.ops) {
    const i = Math.min(seconds - 1, Math.max(0, Math.floor((o.invokeAt - input.startAt) / 1000)));
    // A 412 is the store's answer to a condition, not an error: it is neither ok nor a failure here.
    const rejected = o.kind === 'write' && o.verdict === 'rejected';
    if (o.outcome === 'ok') (o.kind === 'write' ? okWrites : okReads)[i]!++;
    else if (o.outcome === 'fail' && !rejected) fails[i]!++;
    else if (o.outcome === 'unknown') unknowns[i]!++;
    if (o.kind === 'write' && o.completeAt !== undefined) lat[i]!.push(o.completeAt - o.invokeAt);
  }
  return {
    seconds,
    okWrites,
    okReads,
    fails,
    unknowns,
    p50: lat.map((l) => percentile(l, 50)),
    p99: lat.map((l) => percentile(l, 99)),
  };
}

const W = 1000;
const PANEL_H = 150;
const GAP = 46;
const LEFT = 64;
const RIGHT = 150;
const TOP = 40;
const PALETTE = ['#1f77b4', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#7f7f7f'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const n1 = (x: number) => (Math.round(x * 10) / 10).toString();

interface Panel {
  y0: number;
  x: (s: number) => number;
  y: (v: number) => number;
}

/** A "nice" upper bound for an axis. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function path(points: Array<[number, number | null]>, p: Panel): string {
  let d = '';
  let pen = false;
  for (const [s, v] of points) {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${n1(p.x(s))},${n1(p.y(v))}`;
    pen = true;
  }
  return d;
}

/** Renders plot.svg. */
export function renderPlot(input: PlotInput): string {
  const series = plotSeries(input);
  const secs = series.seconds;
  const plotW = W - LEFT - RIGHT;
  const H = TOP + 4 * (PANEL_H + GAP);
  const x = (s: number) => LEFT + (Math.min(Math.max(s, 0), secs) / secs) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(input.title)}</text>`,
  );
  const panel = (i: number, title: string, max: number, log: boolean, unit: string): Panel => {
    const y0 = TOP + i * (PANEL_H + GAP) + 14;
    const lo = log ? 1 : 0;
    const y = log
      ? (v: number) => y0 + PANEL_H - (Math.log10(Math.max(v, lo)) / Math.log10(max)) * PANEL_H
      : (v: number) => y0 + PANEL_H - (Math.min(v, max) / max) * PANEL_H;
    out.push(`<text x="${LEFT}" y="${y0 - 4}" font-weight="bold">${esc(title)}</text>`);
    for (const f of input.faults) {
      const a = x((f.startAt - input.startAt) / 1000);
      const b = x((f.endAt - input.startAt) / 1000);
      out.push(
        `<rect x="${n1(a)}" y="${y0}" width="${n1(Math.max(1, b - a))}" height="${PANEL_H}" fill="#d62728" fill-opacity="0.12"><title>${esc(`${f.kind} ${f.target}`)}</title></rect>`,
      );
    }
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
    const ticks = log
      ? Array.from({ length: Math.round(Math.log10(max)) + 1 }, (_, k) => 10 ** k)
      : [0, max / 2, max];
    for (const t of ticks) {
      out.push(
        `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${n1(y(t))}" y2="${n1(y(t))}" stroke="#eee"/>`,
        `<text x="${LEFT - 4}" y="${n1(y(t) + 4)}" text-anchor="end">${t}${unit}</text>`,
      );
    }
    const step = secs <= 30 ? 5 : secs <= 120 ? 10 : secs <= 600 ? 60 : 300;
    for (let s = 0; s <= secs; s += step) {
      out.push(`<text x="${n1(x(s))}" y="${y0 + PANEL_H + 13}" text-anchor="middle">${s}s</text>`);
    }
    return { y0, x, y };
  };
  const legend = (p: Panel, items: Array<[string, string]>) =>
    items.forEach(([label, color], k) => {
      const ly = p.y0 + 10 + k * 15;
      out.push(
        `<rect x="${LEFT + plotW + 10}" y="${ly - 8}" width="10" height="10" fill="${color}"/>`,
        `<text x="${LEFT + plotW + 24}" y="${ly + 1}">${esc(label)}</text>`,
      );
    });

  // 1. Write latency: dots (at most ~4000, evenly thinned) and per-second p50 / p99.
  const writes = input.ops.filter((o) => o.kind === 'write' && o.completeAt !== undefined);
  const maxLat = niceMax(Math.max(10, ...writes.map((o) => o.completeAt! - o.invokeAt)));
  const p1 = panel(0, 'Write latency (ms, log scale)', 10 ** Math.ceil(Math.log10(maxLat)), true, '');
  const stride = Math.max(1, Math.ceil(writes.length / 4000));
  const color = { ok: '#2ca02c', fail: '#d62728', unknown: '#ff7f0e', rejected: '#999999' } as const;
  for (let k = 0; k < writes.length; k += stride) {
    const o = writes[k]!;
    out.push(
      `<circle cx="${n1(p1.x((o.invokeAt - input.startAt) / 1000))}" cy="${n1(p1.y(o.completeAt! - o.invokeAt))}" r="1.3" fill="${color[o.kind === 'write' && o.verdict === 'rejected' ? 'rejected' : o.outcome]}" fill-opacity="0.5"/>`,
    );
  }
  const mid = (i: number) => i + 0.5;
  out.push(
    `<path d="${path(
      series.p50.map((v, i) => [mid(i), v]),
      p1,
    )}" fill="none" stroke="#000" stroke-width="1.2"/>`,
    `<path d="${path(
      series.p99.map((v, i) => [mid(i), v]),
      p1,
    )}" fill="none" stroke="#000" stroke-width="1.2" stroke-dasharray="4 3"/>`,
  );
  legend(p1, [
    ['ok', color.ok],
    ['fail', color.fail],
    ['unknown', color.unknown],
    ['412 (condition)', color.rejected],
    ['p50 (line)', '#000'],
    ['p99 (dashed)', '#555'],
  ]);

  // 2. Throughput.
  const maxTp = niceMax(Math.max(1, ...series.okWrites, ...series.okReads));
  const p2 = panel(1, 'Throughput (ok ops/s)', maxTp, false, '');
  out.push(
    `<path d="${path(
      series.okWrites.map((v, i) => [mid(i), v]),
      p2,
    )}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`,
    `<path d="${path(
      series.okReads.map((v, i) => [mid(i), v]),
      p2,
    )}" fill="none" stroke="#2ca02c" stroke-width="1.5"/>`,
  );
  legend(p2, [
    ['ok writes/s', '#1f77b4'],
    ['ok reads/s', '#2ca02c'],
  ]);

  // 3. Errors.
  const maxErr = niceMax(Math.max(1, ...series.fails, ...series.unknowns));
  const p3 = panel(2, 'Errors per second (412s apart)', maxErr, false, '');
  out.push(
    `<path d="${path(
      series.fails.map((v, i) => [mid(i), v]),
      p3,
    )}" fill="none" stroke="#d62728" stroke-width="1.5"/>`,
    `<path d="${path(
      series.unknowns.map((v, i) => [mid(i), v]),
      p3,
    )}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>`,
  );
  legend(p3, [
    ['fail/s', '#d62728'],
    ['unknown/s', '#ff7f0e'],
  ]);

  // 4. Replica lag per node.
  const nodes = [...new Set(input.lag.map((l) => l.node))].sort();
  const maxLag = niceMax(Math.max(1, ...input.lag.map((l) => l.lagRecords ?? 0)));
  const p4 = panel(3, 'Replica lag (records behind, per node)', maxLag, false, '');
  nodes.forEach((node, k) => {
    const pts = input.lag
      .filter((l) => l.node === node)
      .sort((a, b) => a.at - b.at)
      .map((l): [number, number | null] => [(l.at - input.startAt) / 1000, l.lagRecords]);
    out.push(
      `<path d="${path(pts, p4)}" fill="none" stroke="${PALETTE[k % PALETTE.length]}" stroke-width="1.5"/>`,
    );
  });
  legend(
    p4,
    nodes.map((n, k) => [n, PALETTE[k % PALETTE.length]!]),
  );
  legend({ ...p4, y0: p4.y0 + 15 * nodes.length + 10 }, [['fault window', '#f4c7c7']]);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
