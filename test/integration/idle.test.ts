import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * An idle store does next to no work (SPEC §5): heartbeat records, which keep idle partitions' produce times
 * moving for lag tools, come to at most one per partition per second in total, not one stream per node.
 * A slow machine can only make the count smaller, never fail this test.
 */

const P = 6;
let nodes: NodeProc[];
let stopAll: () => Promise<void>;

beforeAll(async () => {
  ({ nodes, stopAll } = await startNodes(3, { partitions: P }));
});
afterAll(async () => {
  await stopAll?.();
});

const endOffsets = async (n: NodeProc): Promise<number> => {
  const s = (await http('GET', `${n.url}/v1/status`)).body as { partitions: Array<{ endOffset: number }> };
  return s.partitions.reduce((sum, p) => sum + p.endOffset, 0);
};

describe('an idle store', () => {
  it('three nodes write at most one heartbeat per partition per second in total', async () => {
    const seconds = 30;
    const before = await endOffsets(nodes[0]!);
    const started = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    // Let the monitor see the last heartbeats (it refreshes every 500 ms).
    await new Promise((r) => setTimeout(r, 1500));
    const after = await endOffsets(nodes[0]!);
    const elapsed = (Date.now() - started) / 1000;
    const perPartitionPerSecond = (after - before) / P / elapsed;
    console.info(
      `idle: ${after - before} records in ${elapsed.toFixed(1)} s over ${P} partitions = ${perPartitionPerSecond.toFixed(2)}/partition/s`,
    );
    expect(after - before).toBeGreaterThan(0); // heartbeats are on: the count is not vacuous
    expect(perPartitionPerSecond).toBeLessThanOrEqual(1);
  });
});
