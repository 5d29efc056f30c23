import { describe, expect, it } from 'vitest';
import { parseTopicId } from '../../../src/log/topic.js';

/** A Metadata v12 response frame (header v1) with one broker and one topic, as Kafka sends it. */
function frame(opts: { topic: string; id: Buffer; error?: number }): Buffer {
  const uv = (n: number) => Buffer.from([n]); // every length here is < 128
  const i16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    return b;
  };
  const i32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const str = (s: string) => Buffer.concat([uv(Buffer.byteLength(s) + 1), Buffer.from(s)]);
  return Buffer.concat([
    i32(1), // correlation id
    uv(0), // header tags
    i32(0), // throttle
    uv(2), // one broker
    i32(1),
    str('127.0.0.1'),
    i32(9092),
    uv(0), // rack null
    uv(0),
    str('cluster-xyz'),
    i32(1),
    uv(2), // one topic
    i16(opts.error ?? 0),
    str(opts.topic),
    opts.id,
    Buffer.from([0]), // is_internal
    uv(1), // no partitions
    i32(0),
    uv(0),
    uv(0),
  ]);
}

describe('parseTopicId', () => {
  const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  it("reads the topic's id as base64url, as kafka-topics prints it", () => {
    expect(parseTopicId(frame({ topic: 'lagoon.kv', id }), 'lagoon.kv')).toBe(id.toString('base64url'));
  });

  it('refuses an error, another topic, a zero id and a truncated frame', () => {
    expect(() => parseTopicId(frame({ topic: 'lagoon.kv', id, error: 3 }), 'lagoon.kv')).toThrow(/error 3/);
    expect(() => parseTopicId(frame({ topic: 'other', id }), 'lagoon.kv')).toThrow(/other/);
    expect(() => parseTopicId(frame({ topic: 'lagoon.kv', id: Buffer.alloc(16) }), 'lagoon.kv')).toThrow(
      /no id/,
    );
    const f = frame({ topic: 'lagoon.kv', id });
    expect(() => parseTopicId(f.subarray(0, 40), 'lagoon.kv')).toThrow(/truncated/);
  });
});
