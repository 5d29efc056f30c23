import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../support/browser.js';
import { eventually, localCluster } from '../support/kafka.js';
import { http, type NodeProc, startNodes, writeLoop } from '../support/nodes.js';

/**
 * "The dashboard remembers" (SPEC §5): a replica is paused and recovers while nobody watches; a
 * dashboard opened only afterwards still shows the lag spike, from the node's own 15-minute history
 * (GET /v1/lag/history), with the fault window shaded. Asserted on what a real headless Chromium shows.
 */

const cluster = localCluster();
const SHOTS = path.resolve(import.meta.dirname, '../../test-results/dashboard-history');
/** Liveness bound per step (does it happen at all); a shared 2-core machine may be slow. */
const STEP_MS = 180_000;
const CHARTS = ['chart-lag', 'chart-lag-seconds', 'chart-rates', 'chart-trend'];

/** The little of the DOM the test reads (the project compiles without the DOM lib). */
interface DomEl {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  querySelector(sel: string): DomEl | null;
  querySelectorAll(sel: string): ArrayLike<DomEl>;
}

interface HistoryView {
  state: string;
  samples: number;
  from: number;
  peaks: Record<string, { lag: number; at: number; seconds: number }>;
  windows: Array<{ from: number; to: number; kind: string; target: string }>;
  charts: Record<string, { firstT: number; samples: number; windows: number; markers: number }>;
  events: Array<{ kind: string; target: string }>;
}

async function historyView(page: Page): Promise<HistoryView> {
  return page.evaluate((charts) => {
    const doc = (globalThis as unknown as { document: DomEl }).document;
    const h = doc.querySelector('[data-testid="history"]');
    const out: HistoryView = {
      state: h?.dataset.state ?? '',
      samples: Number(h?.dataset.samples ?? 0),
      from: Number(h?.dataset.from || 0),
      peaks: JSON.parse(h?.dataset.peaks || '{}'),
      windows: JSON.parse(h?.dataset.windows || '[]'),
      charts: {},
      events: Array.from(doc.querySelectorAll('[data-testid="events"] [data-testid="event"]')).map((e) => ({
        kind: e.dataset.kind ?? '',
        target: e.dataset.target ?? '',
      })),
    };
    for (const id of charts) {
      const c = doc.querySelector(`[data-testid="${id}"]`);
      out.charts[id] = {
        firstT: Number(c?.dataset.firstT || 0),
        samples: Number(c?.dataset.samples ?? 0),
        windows: Number(c?.dataset.windows ?? 0),
        markers: Number(c?.dataset.markers ?? 0),
      };
    }
    return out;
  }, CHARTS);
}

/** The replica's partitions as node `from` reports them now (applied = its committed offsets). */
async function partitionsOf(from: NodeProc, node: string): Promise<PartitionView[] | undefined> {
  const r = await http('GET', `${from.url}/v1/lag`);
  return (r.body.replicas as Array<{ node: string; partitions: PartitionView[] }>).find(
    (x) => x.node === node,
  )?.partitions;
}

interface PartitionView {
  partition: number;
  endOffset: number;
  appliedOffset: number;
  lagRecords: number;
}

/** The replica's lag in records (sum over partitions) as node `from` reports it now. */
async function lagOf(from: NodeProc, node: string): Promise<number | undefined> {
  return (await partitionsOf(from, node))?.reduce((a, p) => a + p.lagRecords, 0);
}

describe.skipIf(!cluster || !fs.existsSync(CHROMIUM))('dashboard history in a headless browser', () => {
  let nodes: NodeProc[];
  let stopAll: () => Promise<void>;
  let browser: Browser;

  beforeAll(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    ({ nodes, stopAll } = await startNodes(3));
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const n of nodes ?? []) n.child.kill('SIGCONT');
    await browser?.close();
    await stopAll?.();
  });

  it('shows a fault that happened before the page was opened: lag spike and shaded window', async () => {
    const [a, , c] = nodes as [NodeProc, NodeProc, NodeProc];
    const w = writeLoop(a, { prefix: 'hist', keys: 500, concurrency: 16 });
    let pausedAt = 0;
    let resumedAt = 0;
    let peakSeen = 0;
    try {
      // All three replicas in A's history, C caught up, writes flowing.
      await eventually(
        'three replicas in A’s history and writes flowing',
        async () => {
          const h = await http('GET', `${a.url}/v1/lag/history`);
          const names = Object.keys(h.body.replicas ?? {});
          const lag = await lagOf(a, c.id);
          // The run's cluster is shared: other tests' replica groups are in the history too.
          const ours = nodes.every((n) => names.includes(n.id));
          if (ours && lag !== undefined && w.ok > 20) return true;
          throw new Error(`replicas in history ${JSON.stringify(names)}, lag of C ${lag}, writes ok ${w.ok}`);
        },
        STEP_MS,
        500,
      );

      // The fault, reported as tools do: pause event, SIGSTOP C, its lag grows; SIGCONT, resume event.
      pausedAt = Date.now();
      const paused = await http('POST', `${a.url}/v1/events`, {
        body: { kind: 'node_pause', target: c.id, message: 'history e2e', source: 'e2e' },
      });
      expect(paused.status).toBe(201);
      c.child.kill('SIGSTOP');
      try {
        peakSeen = await eventually(
          `${c.id}'s lag growing while paused`,
          async () => {
            const lag = await lagOf(a, c.id);
            // A few seconds of writes at least: hundreds of records behind.
            return lag !== undefined && lag >= 200 ? lag : undefined;
          },
          STEP_MS,
          250,
        );
      } finally {
        c.child.kill('SIGCONT');
      }
      resumedAt = Date.now();
      const resumed = await http('POST', `${a.url}/v1/events`, {
        body: { kind: 'node_resume', target: c.id, message: 'history e2e', source: 'e2e' },
      });
      expect(resumed.status).toBe(201);

      // Recovery, still with nobody watching. Writes keep flowing, so "caught up" means: C applied (and
      // committed) everything that was in the log when it resumed — a fixed target it reaches by making
      // progress, not a lag below some figure, which a fast writer can keep it above for good.
      const target = await partitionsOf(a, c.id);
      expect(target).toBeDefined();
      await eventually(
        `${c.id} caught up again (applied every partition's end offset at resume: ${JSON.stringify(target)})`,
        async () => {
          const now = await partitionsOf(a, c.id);
          const behind = target!.filter(
            (t) => (now?.find((p) => p.partition === t.partition)?.appliedOffset ?? -1) < t.endOffset,
          );
          if (behind.length === 0) return true;
          throw new Error(`behind on ${JSON.stringify(now)}`);
        },
        STEP_MS,
        250,
      );
    } finally {
      await w.stop();
      c.child.kill('SIGCONT');
    }

    // The endpoint itself: columns since the fault, the spike in them, the window with both ends.
    const api = await http('GET', `${a.url}/v1/lag/history?since=${pausedAt - 2000}`);
    expect(api.status).toBe(200);
    expect(api.body.node).toBe(a.id);
    expect(api.body.capacity).toBe(900);
    expect(api.body.intervalMs).toBe(1000);
    const ts = api.body.t as number[];
    expect(ts.length).toBeGreaterThan(0);
    expect(ts.every((t, i) => t >= pausedAt - 2000 && (i === 0 || t > ts[i - 1]!))).toBe(true);
    const cLags = (api.body.replicas[c.id].lagRecords as Array<number | null>).map((x) => x ?? 0);
    expect(Math.max(...cLags)).toBeGreaterThan(0);
    const apiWindow = (
      api.body.windows as Array<{ kind: string; target: string; from: number; to: number }>
    ).find((x) => x.kind === 'node_pause' && x.target === c.id);
    expect(apiWindow).toBeDefined();
    expect(apiWindow!.to).toBeGreaterThan(apiWindow!.from);
    expect((await http('GET', `${a.url}/v1/lag/history?since=soon`)).status).toBe(400);

    // Now, and only now, the page is opened for the first time.
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const openedAt = Date.now();
    await page.goto(`${a.url}/dashboard`);
    let view: HistoryView | undefined;
    await eventually(
      'the history loaded, charted and the fault window shaded on every chart',
      async () => {
        view = await historyView(page);
        const charted = CHARTS.every((id) => (view!.charts[id]?.windows ?? 0) >= 1);
        return view.state === 'ok' && charted ? true : undefined;
      },
      STEP_MS,
      250,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; last view: ${JSON.stringify(view)}`);
    });
    const v = view!;
    await page.screenshot({ path: path.join(SHOTS, '01-opened-after-the-fault.png'), fullPage: true });
    console.log(
      `[dashboard-history] ${v.samples} history samples from ${new Date(v.from).toISOString()}; ` +
        `${c.id} peak ${v.peaks[c.id]?.lag} records (API saw ≥ ${peakSeen}); page opened ${openedAt - resumedAt} ms after resume`,
    );

    // The charts hold samples from before the page was opened, reaching back before the fault.
    expect(v.samples).toBeGreaterThan(0);
    expect(v.from).toBeLessThan(pausedAt);
    for (const id of CHARTS) {
      expect(v.charts[id]!.firstT, id).toBeGreaterThan(0);
      expect(v.charts[id]!.firstT, id).toBeLessThan(pausedAt);
      expect(v.charts[id]!.samples, id).toBeGreaterThanOrEqual(v.samples);
      // Both ends of the fault are marked too.
      expect(v.charts[id]!.markers, id).toBeGreaterThanOrEqual(2);
    }
    // The lag spike is in the history data: C's peak came during the fault, before the page existed.
    const peak = v.peaks[c.id];
    expect(peak).toBeDefined();
    expect(peak!.lag).toBeGreaterThan(0);
    expect(peak!.at).toBeGreaterThanOrEqual(pausedAt - 1000);
    expect(peak!.at).toBeLessThan(openedAt);
    // The fault window, shaded: from the pause event to the resume event, around the spike's start.
    const win = v.windows.find((x) => x.kind === 'node_pause' && x.target === c.id);
    expect(win).toBeDefined();
    expect(win!.from).toBeGreaterThanOrEqual(pausedAt - 1000);
    expect(win!.to).toBeGreaterThan(win!.from);
    expect(win!.from).toBeLessThanOrEqual(peak!.at);
    const kinds = v.events.filter((e) => e.target === c.id).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['node_pause', 'node_resume']));

    // And it continues live: newer samples arrive after the history.
    const before = v.charts['chart-lag']!.samples;
    await eventually(
      'live samples after the history',
      async () => ((await historyView(page)).charts['chart-lag']!.samples > before ? true : undefined),
      STEP_MS,
      250,
    );
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 1_200_000);
});
