import fs from 'node:fs';
import path from 'node:path';
import { startOwnEnv } from '../chaos/env.js';
import type { CliIo } from '../cli/io.js';
import { getSpec, putSpec } from './figures.js';
import { latencyHistogram, openLoop, summarizeHistogram } from './load.js';
import { rssMiB } from './proc.js';
import { median } from './report.js';

/**
 * `lagoon bench soak`: a fixed, moderate write + read rate for a long time on its own cluster (3 brokers,
 * 3 nodes), sampled in windows: each node's RSS and the latency percentiles of each window. What it is for:
 * memory that grows or latency that drifts under a steady load shows only over minutes, never in a test.
 */
export interface SoakWindow {
  atS: number;
  writes: { ok: number; failed: number; p50Ms: number; p99Ms: number };
  reads: { ok: number; failed: number; p50Ms: number; p99Ms: number };
  rssMiB: Record<string, number | null>;
  /** V8 heap in use (the node's lagoon_process_heap_used_bytes): JS objects apart from SQLite's and Node's native memory. */
  heapMiB: Record<string, number | null>;
  /** Memory outside the V8 heap that Node accounts for (lagoon_process_external_memory_bytes: Buffers and the like). */
  externalMiB?: Record<string, number | null>;
  /** V8 heap reserved, in use or not (lagoon_process_heap_total_bytes). */
  heapTotalMiB?: Record<string, number | null>;
}

export interface SoakTrend {
  /** Least-squares slope of each node's RSS over the windows after the first third, MiB per minute. */
  rssSlopeMiBPerMin: Record<string, number>;
  /** The same for the V8 heap in use. */
  heapSlopeMiBPerMin: Record<string, number>;
  externalSlopeMiBPerMin: Record<string, number>;
  heapTotalSlopeMiBPerMin: Record<string, number>;
  rssFirstMiB: Record<string, number | null>;
  rssLastMiB: Record<string, number | null>;
  /** Median write/read p99 of the last third of the windows over that of the first third (1 = no drift). */
  writeP99Drift: number | null;
  readP99Drift: number | null;
}

/** Slope (per unit of x) of the least-squares line through the points; 0 with fewer than two. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The trend of a soak's windows (pure). */
export function soakTrend(windows: readonly SoakWindow[]): SoakTrend {
  const third = Math.max(1, Math.floor(windows.length / 3));
  const settled = windows.slice(third);
  const nodes = Object.keys(windows[0]?.rssMiB ?? {});
  const slopes = (pick: (w: SoakWindow) => Record<string, number | null>) => {
    const out: Record<string, number> = {};
    for (const id of nodes) {
      const pts = settled
        .filter((w) => pick(w)[id] != null)
        .map((w) => [w.atS / 60, pick(w)[id] as number] as const);
      out[id] = Math.round(slope(pts) * 100) / 100;
    }
    return out;
  };
  const drift = (pick: (w: SoakWindow) => number) => {
    const first = median(windows.slice(0, third).map(pick));
    const last = median(windows.slice(-third).map(pick));
    return first && last !== null ? Math.round((last / first) * 100) / 100 : null;
  };
  return {
    rssSlopeMiBPerMin: slopes((w) => w.rssMiB),
    heapSlopeMiBPerMin: slopes((w) => w.heapMiB ?? {}),
    externalSlopeMiBPerMin: slopes((w) => w.externalMiB ?? {}),
    heapTotalSlopeMiBPerMin: slopes((w) => w.heapTotalMiB ?? {}),
    rssFirstMiB: windows[0]?.rssMiB ?? {},
    rssLastMiB: windows[windows.length - 1]?.rssMiB ?? {},
    writeP99Drift: drift((w) => w.writes.p99Ms),
    readP99Drift: drift((w) => w.reads.p99Ms),
  };
}

/** The node's V8 heap in use and its external memory, from its /metrics (MiB); null when it does not answer. */
async function nodeMemoryMiB(
  url: string,
): Promise<{ heap: number | null; heapTotal: number | null; external: number | null }> {
  const gauge = (text: string, name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
    return m ? Math.round(Number(m[1]) / 104857.6) / 10 : null;
  };
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    return {
      heap: gauge(text, 'lagoon_process_heap_used_bytes'),
      heapTotal: gauge(text, 'lagoon_process_heap_total_bytes'),
      external: gauge(text, 'lagoon_process_external_memory_bytes'),
    };
  } catch {
    return { heap: null, heapTotal: null, external: null };
  }
}

/** Keys read: few enough that the warm-up writes all of them (its loops start at key 0). */
const READ_KEYS = 1000;

export async function soakCommand(args: string[], io: CliIo): Promise<number> {
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(`--${name}`);
    const v = i >= 0 ? Number(args[i + 1]) : dflt;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
    return v;
  };
  const minutes = opt('minutes', 10);
  const writesPerSec = opt('writes', 100);
  const readsPerSec = opt('reads', 200);
  const windowS = opt('window', 30);
  const warmupS = opt('warmup', 60);
  const keys = 10_000;
  const outDir = path.resolve('bench-results');
  const env = await startOwnEnv({ proxied: false, progress: (l) => io.err(`[soak] ${l}`) });
  try {
    const nodes = env.nodes;
    // Spread over the three nodes, as clients behind a balancer would.
    const window = async (seconds: number) => {
      const wh = latencyHistogram();
      const rh = latencyHistogram();
      const runs = await Promise.all([
        ...nodes.map((n) =>
          openLoop(n.url, putSpec(keys, 'bench'), {
            ratePerSec: writesPerSec / nodes.length,
            durationS: seconds,
            histogram: wh,
          }),
        ),
        ...nodes.map((n) =>
          openLoop(n.url, getSpec(READ_KEYS), {
            ratePerSec: readsPerSec / nodes.length,
            durationS: seconds,
            histogram: rh,
          }),
        ),
      ]);
      const w = runs.slice(0, nodes.length);
      const r = runs.slice(nodes.length);
      const sum = (xs: typeof runs, k: 'ok' | 'failed') => xs.reduce((a, x) => a + x[k], 0);
      const ws = summarizeHistogram(wh);
      const rs = summarizeHistogram(rh);
      return {
        writes: { ok: sum(w, 'ok'), failed: sum(w, 'failed'), p50Ms: ws.p50Ms, p99Ms: ws.p99Ms },
        // Reads go to the first READ_KEYS keys, which the warm-up has written: a 404 would count as failed.
        reads: { ok: sum(r, 'ok'), failed: sum(r, 'failed'), p50Ms: rs.p50Ms, p99Ms: rs.p99Ms },
      };
    };
    io.err(`[soak] warm-up ${warmupS} s at ${writesPerSec} writes/s + ${readsPerSec} reads/s`);
    await window(warmupS);
    const windows: SoakWindow[] = [];
    const started = Date.now();
    const total = Math.max(1, Math.round((minutes * 60) / windowS));
    for (let i = 0; i < total; i++) {
      const m = await window(windowS);
      const rss: Record<string, number | null> = {};
      for (const n of nodes) {
        const pid = n.pid?.();
        rss[n.id] = pid === undefined ? null : (rssMiB(pid) ?? null);
      }
      const heap: Record<string, number | null> = {};
      const external: Record<string, number | null> = {};
      const heapTotal: Record<string, number | null> = {};
      for (const n of nodes) {
        const mem = await nodeMemoryMiB(n.url);
        heap[n.id] = mem.heap;
        external[n.id] = mem.external;
        heapTotal[n.id] = mem.heapTotal;
      }
      const w: SoakWindow = {
        atS: Math.round((Date.now() - started) / 1000),
        ...m,
        rssMiB: rss,
        heapMiB: heap,
        externalMiB: external,
        heapTotalMiB: heapTotal,
      };
      windows.push(w);
      io.err(
        `[soak] +${w.atS}s writes ok ${m.writes.ok} failed ${m.writes.failed} p50 ${m.writes.p50Ms} p99 ${m.writes.p99Ms} ms; reads ok ${m.reads.ok} p99 ${m.reads.p99Ms} ms; RSS ${Object.values(rss).join(' / ')} MiB, heap ${Object.values(heap).join(' / ')} (of ${Object.values(heapTotal).join(' / ')}) MiB, external ${Object.values(external).join(' / ')} MiB`,
      );
    }
    const trend = soakTrend(windows);
    const result = {
      kind: 'soak',
      at: new Date().toISOString(),
      minutes,
      writesPerSec,
      readsPerSec,
      windowS,
      warmupS,
      windows,
      trend,
    };
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `soak-${result.at.replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    io.out(`V8 heap slope after the first third (MiB/min): ${JSON.stringify(trend.heapSlopeMiBPerMin)}`);
    io.out(`External memory slope (MiB/min): ${JSON.stringify(trend.externalSlopeMiBPerMin)}`);
    io.out(`V8 heap reserved slope (MiB/min): ${JSON.stringify(trend.heapTotalSlopeMiBPerMin)}`);
    io.out(`RSS slope after the first third (MiB/min): ${JSON.stringify(trend.rssSlopeMiBPerMin)}`);
    io.out(
      `RSS first → last window (MiB): ${JSON.stringify(trend.rssFirstMiB)} → ${JSON.stringify(trend.rssLastMiB)}`,
    );
    io.out(
      `p99 drift (last third / first third): writes ${trend.writeP99Drift}, reads ${trend.readP99Drift}`,
    );
    io.out(file);
    return 0;
  } finally {
    await env.close();
  }
}
