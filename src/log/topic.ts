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
        waitForLeaders: true,
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
