import { partitionOf } from './partitioner.js';

/** What Kafka reports about an existing topic. */
export interface TopicDescription {
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

/** What Lagoon needs of its topic. */
export interface TopicRequirements {
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
}

/** Kafka's broker default when a topic does not override min.insync.replicas. */
const KAFKA_DEFAULT_MIN_ISR = 1;

/**
 * Lists why an existing topic is unsafe for Lagoon, as sentences for the operator. Empty = safe.
 * Missing configs are judged by Kafka's defaults (min.insync.replicas=1, unclean election off, delete policy).
 */
export function checkTopic(actual: TopicDescription, expected: TopicRequirements): string[] {
  const problems: string[] = [];
  if (actual.partitions !== expected.partitions) {
    problems.push(
      `topic has ${actual.partitions} partitions but this node is configured with ${expected.partitions} ` +
        `(--partitions / LAGOON_PARTITIONS); its keys would land in other partitions than every other node's: ` +
        `start it with --partitions ${actual.partitions} (the flag only sizes a topic Lagoon creates)`,
    );
  }
  if (actual.replicationFactor < expected.replicationFactor) {
    problems.push(
      `topic replication factor is ${actual.replicationFactor}, lower than the required ${expected.replicationFactor}`,
    );
  }
  const rawIsr = actual.configs['min.insync.replicas'];
  const isr = rawIsr === undefined ? KAFKA_DEFAULT_MIN_ISR : Number(rawIsr.trim());
  if (!Number.isInteger(isr)) {
    problems.push(`min.insync.replicas is ${JSON.stringify(rawIsr)}, not an integer`);
  } else {
    if (isr < expected.minInsyncReplicas) {
      problems.push(
        `min.insync.replicas is ${isr}${rawIsr === undefined ? ' (Kafka default)' : ''}, lower than the required ` +
          `${expected.minInsyncReplicas}: an acknowledged write could be lost with one broker`,
      );
    }
    if (isr > actual.replicationFactor) {
      problems.push(
        `min.insync.replicas (${isr}) exceeds the replication factor (${actual.replicationFactor}): every write would fail`,
      );
    }
  }
  if ((actual.configs['unclean.leader.election.enable'] ?? '').trim().toLowerCase() === 'true') {
    problems.push(
      'unclean.leader.election.enable is true: an out-of-sync leader could drop acknowledged writes',
    );
  }
  const policies = (actual.configs['cleanup.policy'] ?? '').split(',').map((s) => s.trim().toLowerCase());
  if (policies.includes('compact')) {
    problems.push(
      'cleanup.policy includes compact: compaction removes records that conditional writes depend on, ' +
        'so a rebuilt replica could reach a different state',
    );
  }
  // LogAppendTime (what Lagoon creates now: one broker clock per partition for TTLs and time lag) and
  // CreateTime (topics created by earlier Lagoon versions) are both fine: the replica's log clock only ever
  // takes the maximum, so it never runs backwards under either.
  const tsType = (actual.configs['message.timestamp.type'] ?? 'CreateTime').trim();
  if (tsType !== 'CreateTime' && tsType !== 'LogAppendTime') {
    problems.push(
      `message.timestamp.type is ${JSON.stringify(tsType)}, expected LogAppendTime or CreateTime`,
    );
  }
  return problems;
}

/** Who the topic is: it changes when the topic is deleted and recreated, or when `--kafka` names another cluster. */
export interface TopicIdentity {
  /** Kafka's cluster id (DescribeCluster / Metadata). */
  clusterId: string;
  /** Topic name. */
  topic: string;
  /** Kafka's topic id (Metadata v10+, base64url as kafka-topics prints it); null when it could not be read. */
  topicId: string | null;
}

/**
 * Why a store bound to `stored` must not apply from `actual`, or undefined if it may. An unknown topic id on
 * either side is not a mismatch (the cluster id still is): the caller says so in its status.
 */
export function identityProblem(stored: TopicIdentity, actual: TopicIdentity): string | undefined {
  const show = (i: TopicIdentity) =>
    `topic '${i.topic}' id ${i.topicId ?? 'unknown'} in cluster ${i.clusterId}`;
  const why =
    stored.clusterId !== actual.clusterId
      ? 'Kafka is another cluster (--kafka points elsewhere, or its data dir was wiped and reformatted)'
      : stored.topic !== actual.topic
        ? 'the topic name changed'
        : stored.topicId !== null && actual.topicId !== null && stored.topicId !== actual.topicId
          ? 'the topic was deleted and recreated'
          : undefined;
  if (why === undefined) return undefined;
  return (
    `this store was built from ${show(stored)}, but Kafka now has ${show(actual)}: ${why}. ` +
    'Its offsets mean nothing in this log, so the replica refuses to apply from it. Way out: start the node ' +
    'with a new --db (the replica rebuilds from the log), or bootstrap it from a snapshot of this topic'
  );
}

/**
 * Why a record with `key` must not be applied in `partition` of a `partitions`-partition topic, or undefined if
 * it belongs there. Null keys (heartbeats) belong anywhere.
 */
export function misroutedKey(key: Buffer | null, partition: number, partitions: number): string | undefined {
  if (key === null) return undefined;
  const text = key.toString('utf8');
  const home = partitionOf(text, partitions);
  if (home === partition) return undefined;
  return `key ${JSON.stringify(text.slice(0, 200))} belongs to partition ${home} of ${partitions}, found in partition ${partition}`;
}
