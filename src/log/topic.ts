import net from 'node:net';
import tls from 'node:tls';
import kafkajs, { type Admin } from 'kafkajs';
import { checkTopic, type TopicIdentity } from '../core/topic-safety.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';

/** The settings the Lagoon topic must have; see SPEC §1. */
export interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  /** Largest JSON value the API accepts (sizes the topic's max.message.bytes); default DEFAULTS.maxValueBytes. */
  maxValueBytes?: number;
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
function rawTopicId(
  host: string,
  port: number,
  ssl: boolean,
  topic: string,
  timeoutMs: number,
): Promise<string> {
  // Request header v2 (flexible): api key 3, version 12, correlation id, client id, no tagged fields.
  const name = Buffer.from(topic, 'utf8');
  const clientId = Buffer.from('lagoon-topic-id', 'utf8');
  const header = Buffer.alloc(2 + 2 + 4 + 2);
  header.writeInt16BE(3, 0);
  header.writeInt16BE(12, 2);
  header.writeInt32BE(1, 4);
  header.writeInt16BE(clientId.length, 8);
  const body = Buffer.concat([
    Buffer.from([0]), // header tagged fields
    uvarint(2), // topics: compact array of 1
    Buffer.alloc(16), // topic id: zero = look up by name
    uvarint(name.length + 1),
    name,
    Buffer.from([0]), // topic tagged fields
    Buffer.from([0]), // allow_auto_topic_creation = false
    Buffer.from([0]), // include_topic_authorized_operations = false
    Buffer.from([0]), // tagged fields
  ]);
  const payload = Buffer.concat([header, clientId, body]);
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return new Promise((resolve, reject) => {
    const socket = ssl ? tls.connect({ host, port, servername: host }) : net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const done = (e: Error | undefined, id?: string) => {
      clearTimeout(timer);
      socket.destroy();
      if (e) reject(e);
      else resolve(id!);
    };
    const timer = setTimeout(() => done(new Error(`no Metadata answer from ${host}:${port}`)), timeoutMs);
    socket.once(ssl ? 'secureConnect' : 'connect', () => socket.write(Buffer.concat([size, payload])));
    socket.on('error', (e) => done(e));
    socket.on('close', () => done(new Error(`connection to ${host}:${port} closed`)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readInt32BE(0)) return;
      try {
        done(undefined, parseTopicId(buf.subarray(4, 4 + buf.readInt32BE(0)), topic));
      } catch (e) {
        done(e as Error);
      }
    });
  });
}

function uvarint(v: number): Buffer {
  const bytes: number[] = [];
  let n = v >>> 0;
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** Reads a Metadata v12 response (header v1) up to the first topic's id; every read is bounds-checked. */
export function parseTopicId(frame: Buffer, topic: string): string {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > frame.length) throw new Error('truncated Metadata response');
  };
  const int16 = () => {
    need(2);
    pos += 2;
    return frame.readInt16BE(pos - 2);
  };
  const int32 = () => {
    need(4);
    pos += 4;
    return frame.readInt32BE(pos - 4);
  };
  const uv = () => {
    let r = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      need(1);
      const b = frame[pos++]!;
      r += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return r;
    }
    throw new Error('malformed varint in Metadata response');
  };
  const str = () => {
    const n = uv();
    if (n === 0) return null;
    need(n - 1);
    pos += n - 1;
    return frame.toString('utf8', pos - n + 1, pos);
  };
  const tagged = () => {
    const count = uv();
    for (let i = 0; i < count; i++) {
      uv();
      const size = uv();
      need(size);
      pos += size;
    }
  };
  int32(); // correlation id
  tagged();
  int32(); // throttle time
  const brokers = Math.max(0, uv() - 1);
  for (let i = 0; i < brokers; i++) {
    int32(); // node id
    str(); // host
    int32(); // port
    str(); // rack
    tagged();
  }
  str(); // cluster id
  int32(); // controller id
  if (uv() < 2) throw new Error('Metadata response lists no topic');
  const error = int16();
  const name = str();
  need(16);
  const id = frame.subarray(pos, pos + 16);
  if (error !== 0) throw new Error(`Metadata for topic '${topic}': Kafka error ${error}`);
  if (name !== topic) throw new Error(`Metadata answered for topic '${name}', asked for '${topic}'`);
  if (id.every((b) => b === 0)) throw new Error(`topic '${topic}' has no id (broker older than 2.8)`);
  return id.toString('base64url');
}
