import fs from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLagoonError } from '../../../src/errors.js';
import { type LogRecord, ReplicaStore } from '../../../src/store/replica-store.js';
import {
  createSnapshot,
  listSnapshots,
  receiveSnapshot,
  SNAPSHOT_MAGIC,
  type SnapshotManifest,
} from '../../../src/store/snapshot.js';
import { del, put, rec, tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let store: ReplicaStore;
const TOPIC = { clusterId: 'c1', topic: 'lagoon.kv', topicId: 't1' };
const expectFor = { partitions: 2, topic: 'lagoon.kv', topicId: 't1' };

beforeEach(() => {
  tmp = tempDir();
  store = ReplicaStore.open(join(tmp.dir, 'a.db'), { partitions: 2 });
  store.bindTopicIdentity(TOPIC);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

/** Some history on both partitions: puts, overwrites, deletes, TTLs, idempotency keys. */
function history(from = 0, n = 50): Array<[number, LogRecord]> {
  const out: Array<[number, LogRecord]> = [];
  for (let i = from; i < from + n; i++) {
    out.push([0, rec(i, 1000 + i, `a${i % 7}`, put({ i }, i % 5 === 0 ? { idem: `k${i}` } : {}))]);
    out.push([1, rec(i, 1000 + i, `b${i % 5}`, i % 9 === 0 ? del() : put(i, { ttlMs: 10_000 }))]);
  }
  return out;
}

function apply(s: ReplicaStore, records: Array<[number, LogRecord]>): void {
  for (const [p, r] of records) s.applyBatch(p, [r]);
}

function fill(s: ReplicaStore, from = 0, n = 50): void {
  apply(s, history(from, n));
}

function pack(file: string, manifest: SnapshotManifest, db: Buffer): void {
  fs.writeFileSync(
    file,
    Buffer.concat([Buffer.from(`${SNAPSHOT_MAGIC}\n${JSON.stringify(manifest)}\n`), zlib.gzipSync(db)]),
  );
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    return isLagoonError(e) ? `${e.code}: ${e.message}` : `not a LagoonError: ${String(e)}`;
  }
}

describe('snapshots', () => {
  it('copy the store with a manifest whose offsets and digests are the store’s, and install to an equal state', async () => {
    fill(store);
    const snap = await createSnapshot(store, {
      dir: join(tmp.dir, 'snaps'),
      node: 'n1',
      topic: 'lagoon.kv',
      keep: 3,
    });
    expect(snap.manifest.partitions).toEqual(store.digests());
    expect(snap.manifest).toMatchObject({ node: 'n1', topic: 'lagoon.kv', topicId: 't1', clusterId: 'c1' });
    expect(listSnapshots(join(tmp.dir, 'snaps')).map((s) => s.file)).toEqual([snap.file]);

    const got = await receiveSnapshot(fs.createReadStream(snap.file), join(tmp.dir, 'in.db'), expectFor);
    expect(got).toEqual(snap.manifest);
    const b = ReplicaStore.open(join(tmp.dir, 'b.db'), { partitions: 2 });
    try {
      expect(b.isEmpty()).toBe(true);
      b.installFrom(join(tmp.dir, 'in.db'));
      expect(b.isEmpty()).toBe(false);
      expect(b.dumpState()).toEqual(store.dumpState());
      expect(b.topicIdentity()).toEqual(TOPIC);
      // The tail applies on top exactly as on the original: same state after the same records.
      const tail = history(50, 10);
      apply(store, tail);
      apply(b, tail);
      expect(b.dumpState()).toEqual(store.dumpState());
    } finally {
      b.close();
    }
  });

  it('hold one committed state while applies go on during the copy', async () => {
    fill(store, 0, 20);
    let i = 20;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        fill(store, i++, 1);
        await new Promise((r) => setImmediate(r));
      }
    })();
    const snap = await createSnapshot(store, { dir: tmp.dir, node: 'n1', topic: 'lagoon.kv', keep: 1 });
    stop = true;
    await writer;
    // receiveSnapshot recomputes every partition's digest from its rows and checks the offsets: a torn copy fails.
    const m = await receiveSnapshot(fs.createReadStream(snap.file), join(tmp.dir, 'in.db'), expectFor);
    expect(m.partitions.every((p) => p.appliedOffset >= 20)).toBe(true);
  });

  it('keep the newest N', async () => {
    const dir = join(tmp.dir, 'snaps');
    const made: string[] = [];
    for (let k = 0; k < 4; k++) {
      fill(store, k * 10, 10);
      const s = await createSnapshot(store, {
        dir,
        node: 'n1',
        topic: 'lagoon.kv',
        keep: 2,
        now: new Date(Date.UTC(2026, 0, 1, k)),
      });
      made.push(s.file);
    }
    expect(listSnapshots(dir).map((s) => s.file)).toEqual([made[3], made[2]]);
  });

  it('are refused when the bytes, the rows, the partitions or the topic do not match', async () => {
    fill(store);
    const snap = await createSnapshot(store, { dir: tmp.dir, node: 'n1', topic: 'lagoon.kv', keep: 5 });
    const dest = join(tmp.dir, 'in.db');

    // A byte flipped in the compressed body.
    const raw = fs.readFileSync(snap.file);
    raw[raw.length - 40] = (raw[raw.length - 40] ?? 0) ^ 0xff;
    fs.writeFileSync(join(tmp.dir, 'flipped.lsnap'), raw);
    expect(
      await refusal(receiveSnapshot(fs.createReadStream(join(tmp.dir, 'flipped.lsnap')), dest, expectFor)),
    ).toMatch(/^snapshot_invalid/);
    expect(fs.existsSync(dest)).toBe(false);

    // A row changed, with a manifest whose checksum covers the changed bytes: the recomputed digest catches it.
    const copy = join(tmp.dir, 'copy.db');
    await store.backupTo(copy);
    const db = new Database(copy);
    db.pragma('journal_mode = DELETE');
    db.prepare("UPDATE kv SET value = '\"forged\"' WHERE key = 'a1'").run();
    db.close();
    const bytes = fs.readFileSync(copy);
    const crypto = await import('node:crypto');
    pack(
      join(tmp.dir, 'forged.lsnap'),
      {
        ...snap.manifest,
        bytes: bytes.length,
        sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
      },
      bytes,
    );
    expect(
      await refusal(receiveSnapshot(fs.createReadStream(join(tmp.dir, 'forged.lsnap')), dest, expectFor)),
    ).toMatch(/partition \d: its rows digest to/);

    // Another partition count, another topic, a recreated topic.
    const stream = () => fs.createReadStream(snap.file);
    expect(await refusal(receiveSnapshot(stream(), dest, { ...expectFor, partitions: 3 }))).toMatch(/3/);
    expect(await refusal(receiveSnapshot(stream(), dest, { ...expectFor, topic: 'other' }))).toMatch(/topic/);
    expect(await refusal(receiveSnapshot(stream(), dest, { ...expectFor, topicId: 't2' }))).toMatch(
      /recreated/,
    );
    // Not a snapshot at all.
    fs.writeFileSync(join(tmp.dir, 'junk'), 'hello\nworld\n');
    expect(
      await refusal(receiveSnapshot(fs.createReadStream(join(tmp.dir, 'junk')), dest, expectFor)),
    ).toMatch(/not a Lagoon snapshot/);
  });
});
