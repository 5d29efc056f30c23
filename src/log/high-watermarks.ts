/**
 * High watermarks straight from each partition leader (ListOffsets v2, READ_UNCOMMITTED, latest), one request
 * per leader.
 *
 * Why not kafkajs: its admin asks with READ_COMMITTED and so returns the last stable offset, which an open
 * transaction (an atomic batch in flight, or one a dead node left open until the coordinator aborts it) holds
 * below writes that were already acknowledged. A strong read must wait for everything acknowledged before it
 * began — the high watermark — and the replica reaches it only once the transaction is decided. And one
 * request per leader, each with its own bound, means a frozen broker delays only the partitions it leads.
 */
import { Connection, KafkaProtocolError, type Reader, Writer, withTimeout } from './kafka-wire.js';

const LIST_OFFSETS = 2;
const LATEST = -1n;

/** ListOffsets v2 body: latest offset of `partitions` of `topic`, read uncommitted. */
export function listOffsetsBody(topic: string, partitions: readonly number[]): Buffer {
  const w = new Writer()
    .int32(-1) // replica_id: a client
    .int8(0) // isolation_level: READ_UNCOMMITTED (high watermark)
    .int32(1) // topics
    .nullableString(topic)
    .int32(partitions.length);
  for (const p of partitions) {
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(LATEST);
    w.int32(p).bytes(ts);
  }
  return w.build();
}

/** Per partition: the high watermark, or the Kafka error the leader answered. */
export type WatermarkAnswer = { offset: number } | { error: string };

/** Reads a ListOffsets v2 response for one topic. */
export function readListOffsets(r: Reader, topic: string): Map<number, WatermarkAnswer> {
  const out = new Map<number, WatermarkAnswer>();
  r.int32(); // throttle_time_ms
  const topics = r.arrayLength();
  for (let t = 0; t < topics; t++) {
    const nameLength = r.int16();
    const name = nameLength < 0 ? null : r.bytes(nameLength).toString('utf8');
    const partitions = r.arrayLength();
    for (let i = 0; i < partitions; i++) {
      const partition = r.int32();
      const code = r.int16();
      r.int64(); // timestamp
      const offset = r.int64();
      if (name !== topic) continue;
      out.set(
        partition,
        code === 0
          ? { offset: Number(offset) }
          : { error: new KafkaProtocolError(code, `ListOffsets ${topic}[${partition}]`).message },
      );
    }
  }
  return out;
}

/** One connection per broker address, reused across rounds; a failed one is dropped and made again next time. */
export class HighWatermarks {
  private readonly conns = new Map<string, Connection>();
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: { ssl?: boolean; timeoutMs: number; clientId: string }) {}

  /** High watermarks of `partitions` from the broker at `address` (host:port), bounded by the timeout. */
  fetch(
    address: string,
    topic: string,
    partitions: readonly number[],
  ): Promise<Map<number, WatermarkAnswer>> {
    // One request at a time per connection: queue behind the previous one to the same broker.
    const before = this.busy.get(address) ?? Promise.resolve();
    const work = before.catch(() => {}).then(() => this.ask(address, topic, partitions));
    this.busy.set(address, work);
    return work;
  }

  private async ask(
    address: string,
    topic: string,
    partitions: readonly number[],
  ): Promise<Map<number, WatermarkAnswer>> {
    let conn = this.conns.get(address);
    if (conn === undefined) {
      const i = address.lastIndexOf(':');
      conn = new Connection(address.slice(0, i), Number(address.slice(i + 1)), {
        ssl: this.opts.ssl ?? false,
      });
      this.conns.set(address, conn);
    }
    const c = conn;
    try {
      return await withTimeout(
        (async () => {
          await c.ready;
          return readListOffsets(
            await c.request(LIST_OFFSETS, 2, this.opts.clientId, listOffsetsBody(topic, partitions), false),
            topic,
          );
        })(),
        this.opts.timeoutMs,
        `ListOffsets to ${address}`,
        (e) => c.fail(e),
      );
    } catch (e) {
      // A frozen or dead broker: drop the connection, so the next round connects afresh.
      c.fail(e as Error);
      if (this.conns.get(address) === c) this.conns.delete(address);
      throw e;
    }
  }

  close(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}
