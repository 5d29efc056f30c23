import type { NodeConfig } from '../config.js';
import type { Freshness } from '../core/freshness.js';
import type { ClusterMonitor } from '../log/monitor.js';
import type { Writer } from '../log/writer.js';
import type { OffsetWatch } from '../store/offset-watch.js';
import type { ReplicaStore } from '../store/replica-store.js';

/** What the HTTP API is given by the composition root. It never sees the replica itself: they meet in SQLite. */
export interface ApiDeps {
  config: NodeConfig;
  /** Read side of this node's replica. */
  store: ReplicaStore;
  /** Absent on a `--role replica` node: writes answer 503 there. */
  writer: Writer | undefined;
  monitor: ClusterMonitor;
  watch: OffsetWatch;
  freshness: Freshness;
  /** Tag binding session tokens to this topic. */
  sessionTag: string;
  replicaStatus: () => { state: string; group: string; lastError: string | undefined };
  /** Observability hooks (metrics); no-ops by default. */
  observe?: {
    write?: (op: string, result: string, seconds: number) => void;
    read?: (consistency: string, result: string, seconds: number) => void;
  };
}
