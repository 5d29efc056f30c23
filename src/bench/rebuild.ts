import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { partitionOf } from '../core/partitioner.js';
import { encodeKey, encodeRecord } from '../core/record.js';
import { type LogRecord, ReplicaStore } from '../store/replica-store.js';
import { createSnapshot, receiveSnapshot } from '../store/snapshot.js';

/** Rebuilding one replica of `keys` keys: from the log alone, and from a snapshot plus the log's tail. */
export interface RebuildTimes {
  keys: number;
  partitions: number;
  tailRecords: number;
  /** Applying the whole log (one put per key) into an empty store, in fetch-sized transactions. */
  fromLogS: number;
  /** Taking the snapshot on the peer (online backup + gzip), its file size. */
  snapshotS: number;
  snapshotBytes: number;
  /** On the new node: receive (gunzip, sha256), verify (every digest recomputed), install (one transaction). */
  receiveVerifyS: number;
  installS: number;
  /** Applying the records written after the snapshot. */
  tailS: number;
  fromSnapshotS: number;
}

/**
 * `n` puts over `keys` keys (key-0, key-1, …), grouped by partition, each partition's offsets continuing from
 * `from` (0 where absent); `tag` keeps write ids and timestamps apart between the log and the tail.
 */
function records(
  n: number,
  keys: number,
  partitions: number,
  from: ReadonlyMap<number, number>,
  tag: { wid: string; ts: number; value: (i: number) => unknown },
): Map<number, LogRecord[]> {
  const out = new Map<number, LogRecord[]>();
  const next = new Map(from);
  for (let i = 0; i < n; i++) {
    const key = `key-${i % keys}`;
    const p = partitionOf(key, partitions);
    const offset = next.get(p) ?? 0;
    next.set(p, offset + 1);
    const list = out.get(p) ?? [];
    list.push({
      offset,
      timestamp: tag.ts + i,
      key: encodeKey(key),
      value: encodeRecord({ v: 1, op: 'put', value: tag.value(i), wid: `${tag.wid}-${i}` }),
    });
    out.set(p, list);
  }
  return out;
}

function applyAll(store: ReplicaStore, byPartition: Map<number, LogRecord[]>, batch: number): number {
  const t0 = performance.now();
  for (const [p, list] of byPartition) {
    for (let i = 0; i < list.length; i += batch) store.applyBatch(p, list.slice(i, i + batch));
  }
  return (performance.now() - t0) / 1000;
}

/**
 * Store-level rebuild times on this machine (Kafka's fetch left out on both paths: a replica's fetch of the same
 * records is the same on both and is not its bound — see docs/benchmarks.md). The tail is 1 % of the keys.
 */
export async function measureRebuild(
  opts: { keys?: number; partitions?: number } = {},
): Promise<RebuildTimes> {
  const keys = opts.keys ?? 1_000_000;
  const partitions = opts.partitions ?? 6;
  const batch = 500;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-rebuild-bench-'));
  try {
    const log = records(keys, keys, partitions, new Map(), {
      wid: 'rb',
      ts: 1_700_000_000_000,
      value: (i) => ({ i, pad: 'x'.repeat(64) }),
    });
    const peer = ReplicaStore.open(path.join(dir, 'peer.db'), { partitions });
    const fromLogS = applyAll(peer, log, batch);
    log.clear();
    let t0 = performance.now();
    const snap = await createSnapshot(peer, {
      dir: path.join(dir, 'snaps'),
      node: 'peer',
      topic: 'bench',
      keep: 1,
    });
    const snapshotS = (performance.now() - t0) / 1000;
    const tailRecords = Math.max(1, Math.floor(keys / 100));
    // Offsets of the tail continue each partition's log where the snapshot ends.
    const tail = records(
      tailRecords,
      keys,
      partitions,
      new Map(snap.manifest.partitions.map((p) => [p.partition, p.appliedOffset])),
      { wid: 'tail', ts: 1_800_000_000_000, value: (i) => ({ tail: i }) },
    );
    peer.close();
    t0 = performance.now();
    const incoming = path.join(dir, 'incoming.db');
    await receiveSnapshot(fs.createReadStream(snap.file), incoming, { partitions, topic: 'bench' });
    const receiveVerifyS = (performance.now() - t0) / 1000;
    const fresh = ReplicaStore.open(path.join(dir, 'new.db'), { partitions });
    t0 = performance.now();
    fresh.installFrom(incoming);
    const installS = (performance.now() - t0) / 1000;
    const tailS = applyAll(fresh, tail, batch);
    fresh.close();
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return {
      keys,
      partitions,
      tailRecords,
      fromLogS: r3(fromLogS),
      snapshotS: r3(snapshotS),
      snapshotBytes: snap.size,
      receiveVerifyS: r3(receiveVerifyS),
      installS: r3(installS),
      tailS: r3(tailS),
      fromSnapshotS: r3(receiveVerifyS + installS + tailS),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
