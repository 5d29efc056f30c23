import { LagoonError } from '../errors.js';
import type { ReplicaStore } from './replica-store.js';
import { createSnapshot, listSnapshots, type SnapshotFile } from './snapshot.js';

export interface SnapshotKeeperOptions {
  store: ReplicaStore;
  dir: string;
  node: string;
  topic: string;
  keep: number;
  intervalMs: number;
  /** Why a snapshot cannot be taken now (the replica is bootstrapping, has a gap, refused its log…), if so. */
  unfit: () => string | undefined;
  log: (event: string, fields: Record<string, unknown>) => void;
}

/**
 * Keeps a node's snapshots: one every `intervalMs` (the first one interval after start), at most `keep` in
 * `dir`, one at a time (a request for a fresh one while one is being taken waits for it).
 */
export class SnapshotKeeper {
  private readonly o: SnapshotKeeperOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SnapshotFile> | undefined;
  private closed = false;

  constructor(o: SnapshotKeeperOptions) {
    this.o = o;
  }

  start(): void {
    this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** Snapshots in the directory, newest first. */
  list(): SnapshotFile[] {
    return listSnapshots(this.o.dir);
  }

  /** The newest snapshot no older than `maxAgeMs`, taking one now if there is none. */
  async latest(maxAgeMs = Number.POSITIVE_INFINITY): Promise<SnapshotFile> {
    const newest = this.list()[0];
    if (newest !== undefined && Date.now() - Date.parse(newest.manifest.createdAt) <= maxAgeMs) return newest;
    return this.create('requested');
  }

  /** Takes a snapshot now (or joins the one being taken). Throws 503 `snapshot_unavailable` when unfit. */
  create(why: string): Promise<SnapshotFile> {
    if (this.running) return this.running;
    const unfit = this.o.unfit();
    if (unfit !== undefined) {
      return Promise.reject(
        new LagoonError('snapshot_unavailable', `No snapshot can be taken now: ${unfit}`, {
          status: 503,
          retryable: true,
        }),
      );
    }
    const started = Date.now();
    this.running = createSnapshot(this.o.store, {
      dir: this.o.dir,
      node: this.o.node,
      topic: this.o.topic,
      keep: this.o.keep,
    })
      .then((s) => {
        this.o.log('snapshot_created', {
          why,
          file: s.file,
          bytes: s.size,
          ms: Date.now() - started,
          offsets: Object.fromEntries(s.manifest.partitions.map((p) => [p.partition, p.appliedOffset])),
        });
        return s;
      })
      .catch((e) => {
        this.o.log('snapshot_failed', { why, error: (e as Error).message });
        throw e;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      const go = this.o.unfit() === undefined ? this.create('scheduled').catch(() => {}) : Promise.resolve();
      void go.finally(() => this.schedule());
    }, this.o.intervalMs);
    this.timer.unref();
  }
}
