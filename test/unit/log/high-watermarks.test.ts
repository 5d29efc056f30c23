import { describe, expect, it } from 'vitest';
import { listOffsetsBody, readListOffsets } from '../../../src/log/high-watermarks.js';
import { Reader } from '../../../src/log/kafka-wire.js';

/** A ListOffsets v2 response as a broker sends it (after the response header). */
function response(topic: string, parts: Array<[number, number, bigint]>): Buffer {
  const name = Buffer.from(topic);
  const head = Buffer.alloc(4 + 4 + 2);
  head.writeInt32BE(0, 0); // throttle
  head.writeInt32BE(1, 4); // topics
  head.writeInt16BE(name.length, 8);
  const count = Buffer.alloc(4);
  count.writeInt32BE(parts.length);
  const body = parts.map(([p, code, offset]) => {
    const b = Buffer.alloc(4 + 2 + 8 + 8);
    b.writeInt32BE(p, 0);
    b.writeInt16BE(code, 4);
    b.writeBigInt64BE(-1n, 6);
    b.writeBigInt64BE(offset, 14);
    return b;
  });
  return Buffer.concat([head, name, count, ...body]);
}

describe('ListOffsets v2 (high watermarks)', () => {
  it('asks for the latest offset of each partition, read uncommitted', () => {
    const b = listOffsetsBody('t', [0, 5]);
    expect(b.readInt32BE(0)).toBe(-1); // replica id: a client
    expect(b.readInt8(4)).toBe(0); // READ_UNCOMMITTED: the high watermark, not the last stable offset
    expect(b.readInt32BE(5)).toBe(1); // one topic
    expect(b.readInt16BE(9)).toBe(1);
    expect(b.toString('utf8', 11, 12)).toBe('t');
    expect(b.readInt32BE(12)).toBe(2);
    expect([b.readInt32BE(16), b.readBigInt64BE(20), b.readInt32BE(28), b.readBigInt64BE(32)]).toEqual([
      0,
      -1n,
      5,
      -1n,
    ]);
    expect(b.length).toBe(40);
  });

  it('reads offsets and per-partition errors, ignoring other topics', () => {
    const got = readListOffsets(
      new Reader(
        response('t', [
          [0, 0, 42n],
          [3, 6, -1n],
        ]),
      ),
      't',
    );
    expect(got.get(0)).toEqual({ offset: 42 });
    expect(got.get(3)).toMatchObject({ error: expect.stringContaining('NOT_LEADER_OR_FOLLOWER') });
    expect(readListOffsets(new Reader(response('other', [[0, 0, 1n]])), 't').size).toBe(0);
  });

  it('a truncated response throws instead of reading garbage', () => {
    const full = response('t', [[0, 0, 42n]]);
    expect(() => readListOffsets(new Reader(full.subarray(0, full.length - 3)), 't')).toThrow(/truncated/);
  });
});
