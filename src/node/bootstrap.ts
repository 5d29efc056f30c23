import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { snapshotUnusable } from '../core/snapshot-rule.js';
import type { ReplicaStore } from '../store/replica-store.js';
import { receiveSnapshot, type SnapshotManifest } from '../store/snapshot.js';

export interface BootstrapOptions {
  store: ReplicaStore;
  partitions: number;
  topic: string;
  /** The topic's id as the node knows it (a snapshot of a recreated topic is refused). */
  topicId?: string | undefined;
  peers: readonly string[];
  /** Bearer token with `read` for the peers (they share LAGOON_API_TOKENS), if authentication is on. */
  token?: string | undefined;
  /** This node's URL, sent in `Lagoon-Peer` so the peer learns about it ('' = none). */
  selfUrl?: string;
  /** Where a snapshot is received before it is verified and installed. */
  workDir: string;
  /** Longest a snapshot download may take. */
  timeoutMs: number;
  log: (event: string, fields: Record<string, unknown>) => void;
}

export interface Installed {
  peer: string;
  manifest: SnapshotManifest;
  bytes: number;
  ms: number;
}

/**
 * Rebuilds the store from a peer's snapshot: asks each peer in turn for its newest snapshot (then, if that one
 * is too old for the log's start or for this replica, for a fresh one), verifies it (src/store/snapshot.ts:
 * bytes, offsets and every partition's digest recomputed) and installs the first usable one in one SQLite
 * transaction. Returns what was installed, or undefined with every peer's reason logged.
 */
export async function bootstrapFromPeers(
  o: BootstrapOptions,
  logStart: ReadonlyMap<number, number>,
): Promise<Installed | undefined> {
  fs.mkdirSync(o.workDir, { recursive: true });
  const dest = path.join(o.workDir, 'incoming.db');
  for (const peer of o.peers) {
    for (const fresh of [false, true]) {
      const started = Date.now();
      try {
        const res = await fetch(`${peer}/v1/snapshot${fresh ? '?maxAgeMs=0' : ''}`, {
          headers: {
            ...(o.selfUrl ? { 'lagoon-peer': o.selfUrl } : {}),
            ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
          },
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        if (res.status !== 200 || !res.body) {
          const text = (await res.text().catch(() => '')).slice(0, 300);
          o.log('bootstrap_peer_refused', { peer, status: res.status, answer: text });
          break;
        }
        const size = Number(res.headers.get('content-length') ?? 0);
        const manifest = await receiveSnapshot(
          Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
          dest,
          { partitions: o.partitions, topic: o.topic, topicId: o.topicId },
        );
        const unusable = snapshotUnusable(manifest, o.partitions, o.store.appliedOffsets(), logStart);
        if (unusable !== undefined) {
          o.log('bootstrap_snapshot_unusable', {
            peer,
            fresh,
            createdAt: manifest.createdAt,
            reason: unusable,
          });
          continue;
        }
        o.store.installFrom(dest);
        const installed = { peer, manifest, bytes: size, ms: Date.now() - started };
        o.log('bootstrap_installed', {
          peer,
          createdAt: manifest.createdAt,
          snapshotOf: manifest.node,
          bytes: size,
          ms: installed.ms,
          offsets: Object.fromEntries(manifest.partitions.map((p) => [p.partition, p.appliedOffset])),
        });
        return installed;
      } catch (e) {
        o.log('bootstrap_peer_failed', { peer, fresh, error: (e as Error).message });
        break;
      } finally {
        for (const f of [dest, `${dest}-wal`, `${dest}-shm`, `${dest}-journal`])
          fs.rmSync(f, { force: true });
      }
    }
  }
  return undefined;
}
