import type { NodeConfig } from '../config.js';
import type { Freshness } from '../core/freshness.js';
import type { Readiness } from '../core/readiness.js';
import type { LagoonError } from '../errors.js';
import type { BatchWriter } from '../log/batch-writer.js';
import type { ClusterMonitor } from '../log/monitor.js';
import type { GateRefusal, Writer } from '../log/writer.js';
import type { Outbox } from '../outbox/outbox.js';
import type { OffsetWatch } from '../store/offset-watch.js';
import type { ReplicaStore } from '../store/replica-store.js';
import type { SnapshotKeeper } from '../store/snapshot-keeper.js';

/** What the HTTP API is given by the composition root. It never sees the replica itself: they meet in SQLite. */
export interface ApiDeps {
  config: NodeConfig;
  /** Read side of this node's replica. */
  store: ReplicaStore;
  /** Absent on a `--role replica` node: writes answer 503 there. */
  writer: Writer | undefined;
  /** Atomic batches (POST /v1/batch); absent on a `--role replica` node. */
  batchWriter?: BatchWriter | undefined;
  /** Buffered writes waiting for Kafka (absent on a `--role replica` node). */
  outbox?: Outbox | undefined;
  /** Called after a write was buffered (wakes the drainer). */
  onBuffered?: () => void;
  /** Why a partition cannot take writes now (the Writer's gate), or undefined. */
  writeGate?: (partition: number) => GateRefusal | undefined;
  monitor: ClusterMonitor;
  watch: OffsetWatch;
  freshness: Freshness;
  /** Tag binding session tokens to this topic. */
  sessionTag: string;
  replicaStatus: () => {
    state: string;
    group: string;
    lastError: string | undefined;
    /**
     * Set once the replica refused its log (another topic id or cluster, or a log that ends below the store's
     * offsets): its data must not be served as current at session/bounded/strong (503 `replica_diverged`).
     */
    problem?: { code: string; message: string } | undefined;
    /** Records found in a partition their key does not belong to (neutralised as invalid_record). */
    misrouted?: { count: number; last: string | undefined } | undefined;
  };
  /**
   * Why this replica serves nothing from `partitions` now, if so: 503 `replica_bootstrapping` while it installs a
   * snapshot, 503 `replica_gap` for a partition whose records were deleted before it applied them.
   */
  servingRefusal?: (partitions: number[]) => LagoonError | undefined;
  /** Snapshots of this replica (GET /v1/snapshot); absent on an `api` node. */
  snapshots?: SnapshotKeeper;
  /** Why this node takes no writes because of its topic (unchecked, missing or unsafe), if so. */
  topicProblem?: () => string | undefined;
  /** True once the node began shutting down: new requests are turned away (503 node_stopping). */
  stopping?: () => boolean;
  /** /readyz: can this node serve reads at every level and take writes now, and if not, why. */
  readiness?: () => Readiness;
  /** The node's logger: per-request lines at `debug` (off at the default `info`). */
  logger?: import('pino').Logger;
  /** Observability hooks (metrics); no-ops by default. */
  observe?: {
    write?: (op: string, result: string, seconds: number) => void;
    read?: (consistency: string, result: string, seconds: number) => void;
  };
}
