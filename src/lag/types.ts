/**
 * Burrow-style evaluation of one replica-partition over a sliding window, plus GAP: records this
 * replica never applied were deleted from the log by retention (its applied offset is below the
 * partition's log start offset), so it serves nothing from that partition until it is rebuilt from a
 * peer's snapshot. Severity: OK < WARN < STALL < STOP < REWIND < GAP (LAG_STATUS_ORDER in core/lag-status).
 */
export type LagStatus = 'OK' | 'WARN' | 'STALL' | 'STOP' | 'REWIND' | 'GAP';

/** Lag of one replica on one partition. */
export interface PartitionLag {
  partition: number;
  /** High watermark (next offset to be written). */
  endOffset: number;
  /**
   * Log start offset (earliest offset still in Kafka; 0 until known). appliedOffset below it → status GAP.
   * Optional so older reports (and peers) without it still parse.
   */
  logStartOffset?: number;
  /** Next offset the replica will apply (its own SQLite for this node; Kafka committed offset for others). */
  appliedOffset: number;
  /** endOffset − appliedOffset, never negative; 0 when nothing was ever written. */
  lagRecords: number;
  /** now − produce time of the oldest unapplied record, in seconds; 0 when caught up. */
  lagSeconds: number;
  status: LagStatus;
  reason: string;
}

/** One replica (= one consumer group `lagoon-replica-<node>`), as seen from the reporting node. */
export interface ReplicaLag {
  group: string;
  node: string;
  /** 'self': this node's replica, from its SQLite; 'kafka': another replica, from its committed offsets. */
  source: 'self' | 'kafka';
  /** Whether the group has live members (for 'kafka'); a stopped, paused or dead replica shows false. */
  active: boolean;
  partitions: PartitionLag[];
  /** Largest lagRecords / lagSeconds over partitions. */
  maxLagRecords: number;
  maxLagSeconds: number;
  /** Worst status over partitions (OK < WARN < STALL < STOP < REWIND < GAP). */
  status: LagStatus;
}

export interface BrokerView {
  id: number;
  /** Registered and unfenced in the cluster metadata now. */
  up: boolean;
}

export type { LagoonEvent } from '../core/events.js';

import type { LagoonEvent } from '../core/events.js';

/** GET /v1/lag: the whole lag picture as one node sees it; the dashboard polls this every second. */
export interface LagReport {
  node: string;
  topic: string;
  generatedAt: number;
  /** Is Kafka reachable from this node right now? */
  kafkaReachable: boolean;
  brokers: BrokerView[];
  /** Active KRaft controller id, or null when unknown (no quorum, or not observable). */
  controller: number | null;
  replicas: ReplicaLag[];
  /** Produce rate into the topic (records/s, from end-offset deltas) and this replica's apply rate. */
  rates: { writesPerSec: number; appliedPerSec: number };
  /** Per-partition digest agreement across the replicas this node can reach over HTTP (peers), or null. */
  digests: {
    agree: boolean | null;
    nodes: Array<{ node: string; digest: string | null; appliedOffsets: number[] }>;
  };
  /** Buffered writes waiting in this node's outbox, and the oldest one's age in seconds (0 when empty). */
  outboxDepth: number;
  outboxOldestSeconds: number;
  /** Recent events, oldest first (bounded ring). */
  events: LagoonEvent[];
}
