import { CompressionTypes, type Producer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/core/partitioner.js';
import { ensureTopic } from '../../src/log/topic.js';
import { brokers, eventually, localCluster, testKafka, uniqueName } from '../support/kafka.js';

const cluster = localCluster();
const PARTITIONS = 6;

async function leaderOf(topic: string, partition: number): Promise<number> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const p = meta.topics[0]?.partitions.find((x) => x.partitionId === partition);
    if (!p || p.leader < 0) throw new Error(`partition ${partition} has no leader`);
    return p.leader;
  } finally {
    await admin.disconnect();
  }
}

async function createTopic(topic: string): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  await ensureTopic(admin, { topic, partitions: PARTITIONS, replicationFactor: 3, minInsyncReplicas: 2 });
  await admin.disconnect();
}

describe.skipIf(!cluster)('local 3-broker cluster', () => {
  it('has three registered brokers', async () => {
    const admin = testKafka().admin();
    await admin.connect();
    const desc = await admin.describeCluster();
    await admin.disconnect();
    expect(desc.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
    expect(brokers()).toHaveLength(3);
  });

  it('loses no acknowledged message when a partition leader is SIGKILLed mid-stream', async () => {
    const topic = uniqueName('t-kill');
    await createTopic(topic);
    const kafka = testKafka();
    const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();

    const TOTAL = 10_000;
    const BATCH = 100;
    const acked = new Map<string, number>(); // key → seq
    let failedBatches = 0;
    let unconfirmed = 0;
    let killed: number | undefined;
    for (let seq = 0; seq < TOTAL; seq += BATCH) {
      if (seq === TOTAL / 2) {
        killed = await leaderOf(topic, 0);
        await cluster!.killBroker(killed);
      }
      const messages = Array.from({ length: BATCH }, (_, i) => {
        const key = `k${(seq + i) % 997}`;
        return { key, value: String(seq + i), partition: partitionOf(key, PARTITIONS) };
      });
      try {
        const meta = await producer.send({
          topic,
          acks: -1,
          timeout: 10_000,
          compression: CompressionTypes.None,
          messages,
        });
        // kafkajs can resolve a send whose retry skipped partitions that moved to a broker that had
        // already answered (tulios/kafkajs#1303): only partitions present in the answer are
        // acknowledged. Lagoon's Writer applies the same rule (answers 504, never "acknowledged").
        const answered = new Set(meta.filter((m) => m.errorCode === 0).map((m) => m.partition));
        for (const m of messages) {
          if (answered.has(m.partition)) acked.set(m.value, Number(m.value));
          else unconfirmed++;
        }
      } catch {
        failedBatches++; // not acknowledged: may or may not be in the log, never counted as acked
      }
    }
    await producer.disconnect();
    expect(killed).toBeDefined();
    // Two of three replicas stay in sync: the writes after the kill must (mostly) succeed.
    expect(acked.size).toBeGreaterThanOrEqual(TOTAL - 20 * BATCH);
    await cluster!.startBroker(killed!);

    const consumer = kafka.consumer({ groupId: uniqueName('g'), maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = new Set<string>();
    const lastSeqPerKey = new Map<string, number>();
    const lastOffsetPerPartition = new Map<number, string>();
    let orderViolations = 0;
    let duplicates = 0;
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const value = message.value!.toString();
        const key = message.key!.toString();
        if (seen.has(value)) duplicates++;
        seen.add(value);
        const offset = BigInt(message.offset);
        const prevOffset = lastOffsetPerPartition.get(partition);
        if (prevOffset !== undefined && offset <= BigInt(prevOffset)) orderViolations++;
        lastOffsetPerPartition.set(partition, message.offset);
        // Writes of one key are totally ordered: sequence numbers of a key only grow along its partition.
        const seq = Number(value);
        const prev = lastSeqPerKey.get(key);
        if (prev !== undefined && seq < prev) orderViolations++;
        lastSeqPerKey.set(key, seq);
      },
    });
    try {
      await eventually(
        'every acknowledged message consumed',
        () => ([...acked.keys()].every((v) => seen.has(v)) ? true : undefined),
        90_000,
      );
    } catch (e) {
      // Say what is missing and where the consumer stands, against the log's end offsets.
      const admin = kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      const notSeen = [...acked.keys()].filter((v) => !seen.has(v));
      throw new Error(
        `${(e as Error).message}: ${notSeen.length} acked messages not consumed (e.g. ${notSeen.slice(0, 5).join(',')}); ` +
          `consumed up to ${JSON.stringify(Object.fromEntries(lastOffsetPerPartition))}, ` +
          `end offsets ${JSON.stringify(ends.map((o) => [o.partition, o.high]))}`,
      );
    }
    await consumer.disconnect();
    const missing = [...acked.keys()].filter((v) => !seen.has(v));
    expect(missing).toEqual([]);
    expect(orderViolations).toBe(0);
    // Not asserted: kafkajs' idempotent producer can append a batch it retried across the leader change
    // a second time (seen: 36 of 10,000 in one CI run). The log is the truth Lagoon works with, so Lagoon's
    // records carry a write id that replicas apply once (see test/unit/store and docs/architecture.md).
    console.log(
      `acked ${acked.size}/${TOTAL}, failed batches ${failedBatches}, resolved-but-unanswered ${unconfirmed}, ` +
        `duplicated in the log ${duplicates}, killed broker ${killed}`,
    );
  });

  it('fails acks=all produce within a bounded time with two brokers down, and recovers with one back', async () => {
    const topic = uniqueName('t-minisr');
    await createTopic(topic);
    const producer = testKafka().producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'a', value: 'before', partition: 0 }] });

    const leader = await leaderOf(topic, 0);
    const others = [1, 2, 3].filter((id) => id !== leader);
    // Leave the leader of partition 0 alive, take both followers down.
    await Promise.all(others.map((id) => cluster!.killBroker(id)));
    const t0 = Date.now();
    // Kafka rejects with NOT_ENOUGH_REPLICAS once the ISR shrinks below min.insync.replicas;
    // until then the request times out. Either way the send must fail, and in bounded time.
    await expect(
      producer.send({
        topic,
        acks: -1,
        timeout: 5000,
        messages: [{ key: 'a', value: 'during', partition: 0 }],
      }),
    ).rejects.toThrow();
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(60_000);
    console.log(`acks=all produce failed after ${elapsed} ms with brokers ${others.join(',')} down`);

    await cluster!.startBroker(others[0]!);
    await eventually(
      'acks=all produce succeeds again',
      async () => {
        await producer.send({
          topic,
          acks: -1,
          timeout: 5000,
          messages: [{ key: 'a', value: 'after', partition: 0 }],
        });
        return true;
      },
      90_000,
      500,
    );
    await producer.disconnect();
    await cluster!.startBroker(others[1]!);
  });
});

afterAll(async () => {
  // Whatever a test did, leave all three brokers running for the next file.
  if (cluster) await Promise.all([1, 2, 3].map((id) => cluster.startBroker(id)));
});
