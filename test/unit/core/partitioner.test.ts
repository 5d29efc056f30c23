import { describe, expect, it } from 'vitest';
import { murmur2, partitionOf } from '../../../src/core/partitioner.js';

describe('murmur2', () => {
  // Vectors from Apache Kafka's own UtilsTest, so Lagoon places keys exactly where Kafka's clients do.
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('hashes %s like the Java client', (input, expected) => {
    expect(murmur2(Buffer.from(input))).toBe(expected);
  });

  it('spreads keys over every partition, always in range', () => {
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 6000; i++) counts[partitionOf(`key-${i}`, 6)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    expect(partitionOf('ü-ключ-🔑', 6)).toBeGreaterThanOrEqual(0);
  });
});
