import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/kafka.js';
import { digestsAgree, http, type NodeProc, startNodes, writeLoop } from '../support/nodes.js';

/**
 * A node's life under write load: SIGTERM stops it in order and within its bound, losing no acknowledged write;
 * SIGKILL at random points, twenty times over, never leaves its replica different from the others'. Both
 * through real `lagoon node` processes on the shared test cluster.
 */

/** Acknowledged keys that `node` lacks or holds another value for (a strong scan: after everything acknowledged). */
async function missingOn(node: NodeProc, prefix: string, acked: Map<string, number>): Promise<string[]> {
  const seen = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const q: string = `prefix=${prefix}-&limit=1000&consistency=strong${cursor ? `&cursor=${cursor}` : ''}`;
    const r = await http('GET', `${node.url}/v1/kv?${q}`, { timeoutMs: 60_000 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    for (const item of r.body.items as Array<{ key: string; value: { n: number } }>)
      seen.set(item.key, item.value.n);
    cursor = r.body.nextCursor;
  } while (cursor);
  return [...acked].filter(([key, n]) => seen.get(key) !== n).map(([key]) => key);
}

const logEvents = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map(
      (l) => JSON.parse(l) as { time: string; level: string; node: string; event?: string; step?: string },
    );

describe('node lifecycle under write load', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  it('SIGTERM: readiness off, in-flight writes answered, producer flushed, SQLite closed, exit within the bound; nothing acknowledged is lost', async () => {
    const boundMs = 10_000;
    const env = { LAGOON_SHUTDOWN_TIMEOUT_MS: String(boundMs) };
    const { nodes, stopAll } = await startNodes(3, { env });
    cleanups.push(stopAll);
    const [a, b, c] = nodes as [NodeProc, NodeProc, NodeProc];
    // Load through the node that will stop, and through another one.
    const load = writeLoop(() => [a, b], { prefix: 'term', concurrency: 8, timeoutMs: 15_000 });
    await eventually('writes acknowledged through the node to stop', () =>
      [...load.acked.keys()].filter((k) => k.startsWith('term')).length >= 100 ? true : undefined,
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      a.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const sentAt = Date.now();
    a.child.kill('SIGTERM');
    const exit = await exited;
    const tookMs = Date.now() - sentAt;
    await load.stop();
    console.log(
      `SIGTERM under load: exit ${exit.code}/${exit.signal} after ${tookMs} ms; acknowledged ${load.acked.size}; outcomes ${JSON.stringify(Object.fromEntries(load.outcomes))}`,
    );
    expect(exit).toEqual({ code: 0, signal: null });
    // The node enforces the bound itself (a forced exit after LAGOON_SHUTDOWN_TIMEOUT_MS); the slack is for a
    // loaded machine scheduling the exit, not for the shutdown.
    expect(tookMs).toBeLessThan(boundMs + 20_000);

    // Its log says each step, in order, as JSON lines with a timestamp and the node id.
    const events = logEvents(a.logFile);
    for (const e of events) {
      expect(e.node).toBe(a.id);
      expect(Number.isNaN(Date.parse(e.time))).toBe(false);
      expect(typeof e.level).toBe('string');
    }
    const names = events.map((e) => e.event);
    for (const want of [
      'listening',
      'group_joined',
      'caught_up',
      'stop_requested',
      'shutdown_begun',
      'shutdown_done',
    ]) {
      expect(names, want).toContain(want);
    }
    const steps = events.filter((e) => e.event === 'shutdown_step').map((e) => e.step);
    expect(steps).toEqual([
      'http_closed',
      'background_stopped',
      'producer_flushed',
      'replica_stopped',
      'monitor_stopped',
      'store_closed',
    ]);
    expect(names.indexOf('shutdown_begun')).toBeLessThan(names.indexOf('shutdown_done'));

    // Nothing acknowledged is lost: on the nodes still up, and on the stopped one once it is back.
    expect(await missingOn(b, 'term', load.acked)).toEqual([]);
    expect(await missingOn(c, 'term', load.acked)).toEqual([]);
    await a.restart();
    expect(await missingOn(a, 'term', load.acked)).toEqual([]);
    await eventually('digests agree after the restart', async () =>
      (await digestsAgree(nodes)) ? true : undefined,
    );
  }, 600_000);

  it('SIGKILL at 20 random points under write load, restarting each time: its digest equals the others every time', async () => {
    const { nodes, stopAll } = await startNodes(3);
    cleanups.push(stopAll);
    const [a, b, c] = nodes as [NodeProc, NodeProc, NodeProc];
    // A seeded sequence of kill points (mulberry32): reproducible, spread over 0.1-2.5 s of load after ready.
    let seed = 20261129;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    // Writes through all three: the killed node's own in-flight writes are cut off too (their outcome unknown).
    const load = writeLoop(() => [a, b, c], { prefix: 'kill', concurrency: 6, timeoutMs: 15_000 });
    for (let round = 1; round <= 20; round++) {
      load.resume();
      const afterMs = 100 + Math.floor(random() * 2400);
      await new Promise((r) => setTimeout(r, afterMs));
      await a.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, Math.floor(random() * 500)));
      try {
        await a.restart();
      } catch (e) {
        throw new Error(
          `round ${round}: ${(e as Error).message}\n${fs.readFileSync(a.logFile, 'utf8').slice(-6000)}`,
        );
      }
      // Equal digests need a quiet moment: pause the load, wait until all three agree, then go on.
      load.pause();
      await new Promise((r) => setTimeout(r, 500)); // writes in flight settle
      const agreed = await eventually(
        `round ${round}: digests agree after SIGKILL at +${afterMs} ms`,
        async () => ((await digestsAgree(nodes)) ? true : undefined),
        300_000,
      );
      expect(agreed, `round ${round}`).toBe(true);
    }
    await load.stop();
    console.log(
      `20 SIGKILLs: acknowledged ${load.acked.size}; outcomes ${JSON.stringify(Object.fromEntries(load.outcomes))}`,
    );
    expect(load.acked.size).toBeGreaterThan(100);
    for (const n of nodes) expect(await missingOn(n, 'kill', load.acked), n.id).toEqual([]);
  }, 1_800_000);
});
