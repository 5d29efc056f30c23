/** Lagoon's defaults, in one place: config parsing, the CLI, docker-compose checks and docs read them here. */
export const DEFAULTS = {
  /** Kafka topic every write goes through. */
  topic: 'lagoon.kv',
  partitions: 6,
  replicationFactor: 3,
  minInsyncReplicas: 2,
  /** First node's HTTP port; node i listens on apiPort + i - 1. */
  apiPort: 8081,
  nodes: 3,
  brokers: 3,
  /** Local cluster: broker i's PLAINTEXT listener is kafkaBasePort + i - 1, its CONTROLLER listener kafkaBasePort + 100 + i - 1. */
  kafkaBasePort: 29092,
  dataDir: '.lagoon',
  /** The topic's retention.ms: 7 days, Kafka's default. */
  retentionMs: 7 * 24 * 3600 * 1000,
  /** Each node snapshots its replica this often (at most half the retention; see docs/architecture.md). */
  snapshotIntervalMs: 3600 * 1000,
  /** Max JSON value size in bytes. */
  maxValueBytes: 1024 * 1024,
  /** Apache Kafka version fetched from Maven Central for the local cluster (see infra/kafka). */
  kafkaVersion: '4.1.1',
} as const;
