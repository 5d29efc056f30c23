import kafkajs, { type Admin } from 'kafkajs';
import { checkTopic } from '../core/topic-safety.js';
import { LagoonError } from '../errors.js';

/** The settings the Lagoon topic must have; see SPEC §1. */
export interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
}

/**
 * Creates the topic explicitly if missing, else verifies that the existing one is safe to use
 * (partition count, RF, min ISR, unclean election off, no compaction); refuses an unsafe topic.
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
              { name: 'message.timestamp.type', value: 'CreateTime' },
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
  const meta = await admin.fetchTopicMetadata({ topics: [spec.topic] });
  const t = meta.topics[0];
  const cfg = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: spec.topic }],
  });
  const configs: Record<string, string> = {};
  for (const entry of cfg.resources[0]?.configEntries ?? []) configs[entry.configName] = entry.configValue;
  const problems = checkTopic(
    {
      partitions: t?.partitions.length ?? 0,
      replicationFactor: Math.min(...(t?.partitions.map((p) => p.replicas.length) ?? [0])),
      configs,
    },
    spec,
  );
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
