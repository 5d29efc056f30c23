import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/partitioner.js';
import { DEFAULTS } from '../../src/defaults.js';
import { http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * Values up to the API's limit can be written under concurrency: the writer sizes each produce request
 * by bytes (not only by count), and the topic's max.message.bytes admits the largest record. Before,
 * 50 concurrent 100 KiB PUTs to one partition went out as one 5 MB request and all failed with
 * MESSAGE_TOO_LARGE (answered 504 "retryable", though no retry could help).
 */
describe('large values', () => {
  let nodes: NodeProc[];
  let stopAll: () => Promise<void>;

  beforeAll(async () => {
    ({ nodes, stopAll } = await startNodes(1));
  });
  afterAll(async () => {
    await stopAll?.();
  });

  it('50 concurrent 100 KiB PUTs to one partition all succeed', async () => {
    const keys: string[] = [];
    for (let i = 0; keys.length < 50; i++) if (partitionOf(`big-${i}`, 6) === 0) keys.push(`big-${i}`);
    const pad = 'x'.repeat(100 * 1024);
    const answers = await Promise.all(
      keys.map((k, i) => http('PUT', kvUrl(nodes[0]!, k), { body: { i, pad }, timeoutMs: 120_000 })),
    );
    expect(answers.map((a) => a.status)).toEqual(keys.map(() => 200));
    const got = await http('GET', kvUrl(nodes[0]!, keys[49]!, 'consistency=strong'));
    expect(got.status).toBe(200);
    expect(got.body.value.pad.length).toBe(100 * 1024);
  });

  it('a value at the limit is written; one over it is 413 before anything is sent', async () => {
    // A JSON string of n characters is n + 2 bytes.
    const atLimit = 'y'.repeat(DEFAULTS.maxValueBytes - 2);
    const ok = await http('PUT', kvUrl(nodes[0]!, 'at-limit'), { body: atLimit, timeoutMs: 120_000 });
    expect(ok.status).toBe(200);
    const tooBig = await http('PUT', kvUrl(nodes[0]!, 'too-big'), {
      body: `${atLimit}zz`,
      timeoutMs: 120_000,
    });
    expect(tooBig.status).toBe(413);
    expect((await http('GET', kvUrl(nodes[0]!, 'too-big'))).status).toBe(404);
  });
});
