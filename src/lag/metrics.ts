import client from 'prom-client';
import { LAG_STATUS_ORDER } from '../core/lag-status.js';
import type { LagReport } from './types.js';

/** Every status, mild → severe: one `lagoon_lag_status` series each per replica partition. */
const STATUSES = LAG_STATUS_ORDER;

/**
 * Lag metrics under the names existing dashboards and alerts already use: the kafka_exporter family
 * (kafka_consumergroup_lag, kafka_topic_partition_current_offset, …) and the kafka-lag-exporter family
 * (kafka_consumergroup_group_lag, …_lag_seconds, …_max_lag), plus lagoon_* extras. Every node reports
 * every replica group it can see, so one scrape shows the whole picture. Values come from the latest
 * LagReport at scrape time.
 */
export function registerLagMetrics(registry: client.Registry, report: () => LagReport): void {
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    fill: (g: client.Gauge<L>, r: LagReport) => void,
  ) =>
    new client.Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this, report());
      },
    });
  const perPartition = (
    fn: (g: client.Gauge<'consumergroup' | 'topic' | 'partition'>, r: LagReport) => void,
  ) => fn;
  gauge(
    'kafka_consumergroup_lag',
    'Consumer group lag in records (kafka_exporter)',
    ['consumergroup', 'topic', 'partition'],
    perPartition((g, r) => {
      for (const rep of r.replicas)
        for (const p of rep.partitions)
          g.set({ consumergroup: rep.group, topic: r.topic, partition: String(p.partition) }, p.lagRecords);
    }),
  );
  gauge(
    'kafka_consumergroup_current_offset',
    'Applied (committed) offset of the consumer group (kafka_exporter)',
    ['consumergroup', 'topic', 'partition'],
    (g, r) => {
      for (const rep of r.replicas)
        for (const p of rep.partitions)
          g.set(
            { consumergroup: rep.group, topic: r.topic, partition: String(p.partition) },
            p.appliedOffset,
          );
    },
  );
  gauge(
    'kafka_topic_partition_current_offset',
    'High watermark of the partition (kafka_exporter)',
    ['topic', 'partition'],
    (g, r) => {
      const first = r.replicas[0];
      for (const p of first?.partitions ?? [])
        g.set({ topic: r.topic, partition: String(p.partition) }, p.endOffset);
    },
  );
  gauge(
    'kafka_consumergroup_group_lag',
    'Group offset lag of a partition (kafka-lag-exporter)',
    ['group', 'topic', 'partition'],
    (g, r) => {
      for (const rep of r.replicas)
        for (const p of rep.partitions)
          g.set({ group: rep.group, topic: r.topic, partition: String(p.partition) }, p.lagRecords);
    },
  );
  gauge(
    'kafka_consumergroup_group_lag_seconds',
    'Group time lag of a partition in seconds (kafka-lag-exporter)',
    ['group', 'topic', 'partition'],
    (g, r) => {
      for (const rep of r.replicas)
        for (const p of rep.partitions)
          g.set({ group: rep.group, topic: r.topic, partition: String(p.partition) }, p.lagSeconds);
    },
  );
  gauge(
    'kafka_consumergroup_group_max_lag',
    'Max group offset lag (kafka-lag-exporter)',
    ['group'],
    (g, r) => {
      for (const rep of r.replicas) g.set({ group: rep.group }, rep.maxLagRecords);
    },
  );
  gauge(
    'kafka_consumergroup_group_max_lag_seconds',
    'Max group time lag in seconds (kafka-lag-exporter)',
    ['group'],
    (g, r) => {
      for (const rep of r.replicas) g.set({ group: rep.group }, rep.maxLagSeconds);
    },
  );
  gauge(
    'lagoon_lag_status',
    'Burrow-style status per replica partition, one series per status label: 1 for the current status, 0 for the others. status: OK, WARN (falling behind), STALL (alive but not moving), STOP (no progress, not alive), REWIND (applied offset went back), GAP (records it never applied were deleted by retention; serves nothing from the partition until rebuilt from a snapshot)',
    ['group', 'partition', 'status'],
    (g, r) => {
      for (const rep of r.replicas)
        for (const p of rep.partitions)
          for (const s of STATUSES)
            g.set({ group: rep.group, partition: String(p.partition), status: s }, p.status === s ? 1 : 0);
    },
  );
  gauge(
    'lagoon_replica_active',
    'Whether the replica group has live members (1) or not (0)',
    ['group'],
    (g, r) => {
      for (const rep of r.replicas) g.set({ group: rep.group }, rep.active ? 1 : 0);
    },
  );
  gauge(
    'lagoon_broker_up',
    'Broker registered in the cluster metadata (1) or not (0)',
    ['broker'],
    (g, r) => {
      for (const b of r.brokers) g.set({ broker: String(b.id) }, b.up ? 1 : 0);
    },
  );
  gauge('lagoon_kafka_reachable', 'Kafka reachable from this node', [], (g, r) =>
    g.set(r.kafkaReachable ? 1 : 0),
  );
  gauge('lagoon_outbox_records', 'Buffered writes waiting in the outbox of this node for Kafka', [], (g, r) =>
    g.set(r.outboxDepth),
  );
  gauge(
    'lagoon_outbox_oldest_seconds',
    'Age of the oldest buffered write waiting in the outbox of this node (0 when empty)',
    [],
    (g, r) => g.set(r.outboxOldestSeconds),
  );
  gauge(
    'lagoon_digest_agreement',
    'Replica digests agree at equal offsets: 1 yes, 0 no, -1 unknown',
    [],
    (g, r) => g.set(r.digests.agree === null ? -1 : r.digests.agree ? 1 : 0),
  );
}
