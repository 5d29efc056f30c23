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
      `topic has ${actual.partitions} partitions but ${expected.partitions} are configured; ` +
        'keys would map to other partitions than the replicas expect',
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
  return problems;
}
