import kafkajs, { type Admin } from 'kafkajs';
import { checkTopic, type TopicIdentity } from '../core/topic-safety.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { Connection, Reader, Writer, withTimeout } from './kafka-wire.js';

/** Kafka's Metadata API key. */
const METADATA = 3;

/** The settings the Lagoon topic must have; see SPEC §1. */
export interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  /** Largest JSON value the API accepts (sizes the topic's max.message.bytes); default DEFAULTS.maxValueBytes. */
  maxValueBytes?: number;
  /** retention.ms of a topic created here; default DEFAULTS.retentionMs. An existing topic keeps its own. */
  retentionMs?: number;
}

/**
 * The topic's max.message.bytes: room for the largest record the API accepts (value + envelope) and for
 * the writer's batches (≤ 900 KiB of records each, or one larger record alone), with a margin for
 * Kafka's batch and record headers. Kafka's default (~1 MiB) would refuse a 1 MiB value.
 */
export function topicMaxMessageBytes(maxValueBytes: number): number {
  return Math.max(1024 * 1024, maxValueBytes) + 64 * 1024;
}

/**
 * Creates the topic explicitly if missing, else verifies that the existing one is safe to use
 * (partition count, RF, min ISR, unclean election off, no compaction, timestamp type); refuses an unsafe
 * topic. `spec.partitions` sizes a topic it creates; an existing topic with another count is refused
 * (`unsafe_topic`), never adopted: the node's store, session tokens and key routing were sized by it.
 */
export async function ensureTopic(admin: Admin, spec: TopicSpec): Promise<'created' | 'exists'> {
  const existing = await admin.listTopics();
  if (!existing.includes(spec.topic)) {
    try {
      await admin.createTopics({
        waitForLeaders: false,
        timeout: 30_000,
        topics: [
          {
            topic: spec.topic,
            numPartitions: spec.partitions,
            replicationFactor: spec.replicationFactor,
            configEntries: [
              { name: 'min.insync.replicas', value: String(spec.minInsyncReplicas) },
              { name: 'unclean.leader.election.enable', value: 'false' },
              { name: 'cleanup.policy', value: 'delete' },
              // Records older than this are deleted: a replica is rebuilt from a snapshot younger than it.
              { name: 'retention.ms', value: String(spec.retentionMs ?? DEFAULTS.retentionMs) },
              // The broker's clock, not each producing node's: TTLs and time lag then follow one clock per
              // partition (the leader's), and a node with a wrong clock cannot expire or age records.
              { name: 'message.timestamp.type', value: 'LogAppendTime' },
              {
                name: 'max.message.bytes',
                value: String(topicMaxMessageBytes(spec.maxValueBytes ?? DEFAULTS.maxValueBytes)),
              },
            ],
          },
        ],
      });
      await waitForLeaders(admin, spec);
      return 'created';
    } catch (e) {
      // Another node may have created it at the same moment: fall through to verification.
      if (!/already exists/i.test((e as Error).message)) throw e;
    }
  }
  const problems = await verifyTopic(admin, spec);
  if (problems === 'missing') {
    throw new LagoonError('topic_missing', `Topic '${spec.topic}' vanished while it was being checked`, {
      retryable: true,
    });
  }
  if (problems.length > 0) {
    throw new LagoonError(
      'unsafe_topic',
      `Topic '${spec.topic}' exists with unsafe settings: ${problems.join('; ')}. ` +
        'Fix it with kafka-configs / kafka-topics, or use another topic name (--topic).',
    );
  }
  return 'exists';
}

/**
 * Checks an existing topic without creating anything: the reasons it is unsafe (empty = safe), or 'missing'.
 * Running nodes call it periodically, so a topic deleted, recreated with another partition count or
 * reconfigured under them stops their writes instead of scattering keys.
 */
export async function verifyTopic(admin: Admin, spec: TopicSpec): Promise<string[] | 'missing'> {
  if (!(await admin.listTopics()).includes(spec.topic)) return 'missing';
  const meta = await admin.fetchTopicMetadata({ topics: [spec.topic] });
  const t = meta.topics[0];
  const cfg = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: spec.topic }],
  });
  const configs: Record<string, string> = {};
  for (const entry of cfg.resources[0]?.configEntries ?? []) configs[entry.configName] = entry.configValue;
  return checkTopic(
    {
      partitions: t?.partitions.length ?? 0,
      replicationFactor: Math.min(...(t?.partitions.map((p) => p.replicas.length) ?? [0])),
      configs,
    },
    spec,
  );
}

/**
 * Polls until every partition has a leader. kafkajs' own waitForLeaders gives up on
 * UNKNOWN_TOPIC_OR_PARTITION, which a just-created topic can answer for a moment on a fresh cluster.
 */
async function waitForLeaders(admin: Admin, spec: TopicSpec, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [spec.topic] });
      const parts = meta.topics[0]?.partitions ?? [];
      if (parts.length === spec.partitions && parts.every((p) => p.leader >= 0)) return;
      last = `${parts.filter((p) => p.leader >= 0).length}/${spec.partitions} partitions have a leader`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new LagoonError(
    'topic_not_ready',
    `Topic '${spec.topic}' has no leaders after ${timeoutMs} ms (${last})`,
    {
      retryable: true,
    },
  );
}

/** How to reach the brokers with a raw socket (the topic id needs Metadata v10+, which kafkajs 2.2.4 lacks). */
export interface RawEndpoint {
  brokers: string[];
  ssl: boolean;
  /** SASL is not spoken by the raw client: the topic id is then unknown and only the cluster id is compared. */
  sasl: boolean;
}

/**
 * Who the topic is: the cluster id (kafkajs DescribeCluster) and Kafka's topic id. kafkajs 2.2.4 speaks
 * Metadata v0–v6 only and never returns topic ids (added in v10, KIP-516), so the id is read with one raw
 * Metadata v12 request; on SASL clusters or brokers older than 3.1 it is null and only the cluster id counts.
 */
export async function fetchTopicIdentity(
  admin: Admin,
  topic: string,
  raw: RawEndpoint,
  timeoutMs = 5000,
): Promise<TopicIdentity> {
  const cluster = await admin.describeCluster();
  let topicId: string | null = null;
  if (!raw.sasl) {
    for (const b of raw.brokers) {
      try {
        const [host, port] = b.split(':');
        topicId = await rawTopicId(host!, Number(port), raw.ssl, topic, timeoutMs);
        break;
      } catch {
        // try the next broker; null if none answers (the cluster id still guards)
      }
    }
  }
  return { clusterId: cluster.clusterId, topic, topicId };
}

/** One Metadata v12 request for `topic` over a fresh socket; resolves with its topic id (base64url). */
async function rawTopicId(
  host: string,
  port: number,
  ssl: boolean,
  topic: string,
  timeoutMs: number,
): Promise<string> {
  const body = new Writer()
    .compactArrayLength(1) // topics
    .bytes(Buffer.alloc(16)) // topic id: zero = look up by name
    .compactString(topic)
    .emptyTaggedFields()
    .int8(0) // allow_auto_topic_creation = false
    .int8(0) // include_topic_authorized_operations = false
    .emptyTaggedFields()
    .build();
  const conn = new Connection(host, port, { ssl });
  const work = (async () => {
    try {
      await conn.ready;
      return readTopicId(await conn.request(METADATA, 12, 'lagoon-topic-id', body, true), topic);
    } finally {
      conn.close();
    }
  })();
  return withTimeout(work, timeoutMs, `Metadata to ${host}:${port}`, (e) => conn.fail(e));
}

/** Reads a whole Metadata v12 response frame (header v1) up to the first topic's id. */
export function parseTopicId(frame: Buffer, topic: string): string {
  const r = new Reader(frame);
  r.int32(); // correlation id
  r.skipTaggedFields();
  return readTopicId(r, topic);
}

/** Reads a Metadata v12 response body (past its header) up to the first topic's id. */
function readTopicId(r: Reader, topic: string): string {
  r.int32(); // throttle time
  const brokers = r.compactArrayLength();
  for (let i = 0; i < brokers; i++) {
    r.int32(); // node id
    r.compactNullableString(); // host
    r.int32(); // port
    r.compactNullableString(); // rack
    r.skipTaggedFields();
  }
  r.compactNullableString(); // cluster id
  r.int32(); // controller id
  if (r.compactArrayLength() < 1) throw new Error('Metadata response lists no topic');
  const error = r.int16();
  const name = r.compactNullableString();
  const id = r.bytes(16);
  if (error !== 0) throw new Error(`Metadata for topic '${topic}': Kafka error ${error}`);
  if (name !== topic) throw new Error(`Metadata answered for topic '${name}', asked for '${topic}'`);
  if (id.every((b) => b === 0)) throw new Error(`topic '${topic}' has no id (broker older than 2.8)`);
  return Buffer.from(id).toString('base64url');
}

/**
 * Takes the partitions' log start offsets (`low`) from a kafkajs fetchTopicOffsets answer. A value that
 * is not a non-negative integer is ignored (the last known one stays); one that went down (the topic
 * was recreated) is taken as it is.
 */
export function logStartsOf(offsets: Array<{ partition: number; low: string }>): Map<number, number> {
  const out = new Map<number, number>();
  for (const o of offsets) {
    const low = Number(o.low);
    if (Number.isSafeInteger(low) && low >= 0) out.set(o.partition, low);
  }
  return out;
}

/** The log's first offset per partition (0 where nothing was ever deleted), asked of Kafka now. */
export async function fetchLogStarts(admin: Admin, topic: string): Promise<Map<number, number>> {
  return logStartsOf(await admin.fetchTopicOffsets(topic));
}
