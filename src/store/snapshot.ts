import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { digestOf } from '../core/digest.js';
import { LagoonError } from '../errors.js';
import { type ReplicaStore, SCHEMA_VERSION } from './replica-store.js';

/**
 * Snapshots of a replica: a consistent copy of its SQLite store, compressed, behind a manifest that says which
 * log offsets it holds. A replica is rebuilt from a snapshot plus the log's tail after the manifest's offsets.
 *
 * One format on disk and on the wire (GET /v1/snapshot), so a snapshot file is served as it is:
 *
 *     LAGOON-SNAPSHOT 1\n
 *     {manifest JSON}\n
 *     gzip(SQLite database file)
 *
 * The manifest's offsets and digests are read from the copy itself (its `partitions` table), never from the
 * live store, so they match the data by construction; `sha256` covers the uncompressed database bytes.
 */

export const SNAPSHOT_MAGIC = 'LAGOON-SNAPSHOT 1';
export const SNAPSHOT_CONTENT_TYPE = 'application/vnd.lagoon.snapshot';
const SUFFIX = '.lsnap';
/** Longest manifest line accepted when reading (a manifest is small: one entry per partition). */
const MAX_MANIFEST_BYTES = 1 << 20;

export interface SnapshotManifest {
  format: 1;
  /** The node whose replica was copied. */
  node: string;
  topic: string;
  topicId: string | null;
  clusterId: string | null;
  schemaVersion: number;
  /** Per partition: next offset to apply from the log, and the state digest at that offset. */
  partitions: Array<{ partition: number; appliedOffset: number; digest: string }>;
  createdAt: string;
  /** Uncompressed database size and sha256 (hex). */
  bytes: number;
  sha256: string;
}

export interface SnapshotFile {
  file: string;
  manifest: SnapshotManifest;
  /** Size of the snapshot file (compressed). */
  size: number;
}

/** Creates a snapshot of `store` in `dir` and returns it; keeps at most `keep` snapshots there (oldest go). */
export async function createSnapshot(
  store: ReplicaStore,
  opts: { dir: string; node: string; topic: string; keep: number; now?: Date },
): Promise<SnapshotFile> {
  fs.mkdirSync(opts.dir, { recursive: true });
  const now = opts.now ?? new Date();
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('.', '');
  const base = `snapshot-${stamp}-${crypto.randomBytes(3).toString('hex')}`;
  const copy = path.join(opts.dir, `${base}.db.tmp`);
  const out = path.join(opts.dir, `${base}${SUFFIX}`);
  try {
    await store.backupTo(copy);
    const facts = readCopy(copy);
    const { bytes, sha256 } = await hashFile(copy);
    const manifest: SnapshotManifest = {
      format: 1,
      node: opts.node,
      topic: facts.topic ?? opts.topic,
      topicId: facts.topicId,
      clusterId: facts.clusterId,
      schemaVersion: facts.schemaVersion,
      partitions: facts.partitions,
      createdAt: now.toISOString(),
      bytes,
      sha256,
    };
    const fd = fs.openSync(`${out}.tmp`, 'w');
    try {
      fs.writeSync(fd, `${SNAPSHOT_MAGIC}\n${JSON.stringify(manifest)}\n`);
      await pipeline(
        fs.createReadStream(copy),
        zlib.createGzip({ level: 6 }),
        fs.createWriteStream('', { fd, autoClose: false }),
      );
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(`${out}.tmp`, out);
    pruneSnapshots(opts.dir, opts.keep);
    return { file: out, manifest, size: fs.statSync(out).size };
  } finally {
    for (const f of [copy, `${copy}-wal`, `${copy}-shm`, `${out}.tmp`]) fs.rmSync(f, { force: true });
  }
}

/** The snapshots in `dir`, newest first. Files that cannot be read as snapshots are skipped. */
export function listSnapshots(dir: string): SnapshotFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith('snapshot-') && n.endsWith(SUFFIX));
  } catch {
    return [];
  }
  const found: SnapshotFile[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    try {
      found.push({ file, manifest: readManifestFile(file), size: fs.statSync(file).size });
    } catch {
      // A file being written is still .tmp; anything else unreadable is not ours to serve.
    }
  }
  return found.sort((a, b) => b.manifest.createdAt.localeCompare(a.manifest.createdAt));
}

/** Deletes all but the newest `keep` snapshots in `dir`. */
export function pruneSnapshots(dir: string, keep: number): void {
  for (const s of listSnapshots(dir).slice(Math.max(1, keep))) fs.rmSync(s.file, { force: true });
}

function readManifestFile(file: string): SnapshotManifest {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(MAX_MANIFEST_BYTES, fs.fstatSync(fd).size));
    fs.readSync(fd, buf, 0, buf.length, 0);
    const first = buf.indexOf(10);
    const second = buf.indexOf(10, first + 1);
    if (first < 0 || second < 0 || buf.subarray(0, first).toString() !== SNAPSHOT_MAGIC) {
      throw new Error(`${file} is not a Lagoon snapshot`);
    }
    return parseManifest(buf.subarray(first + 1, second).toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

function parseManifest(text: string): SnapshotManifest {
  const m = JSON.parse(text) as SnapshotManifest;
  if (
    m?.format !== 1 ||
    !Array.isArray(m.partitions) ||
    typeof m.sha256 !== 'string' ||
    typeof m.createdAt !== 'string'
  ) {
    throw new LagoonError('snapshot_invalid', 'The snapshot manifest is not a format-1 Lagoon manifest');
  }
  return m;
}

/** What a snapshot's database says about itself. */
function readCopy(file: string): {
  topic: string | undefined;
  topicId: string | null;
  clusterId: string | null;
  schemaVersion: number;
  partitionCount: number;
  partitions: SnapshotManifest['partitions'];
} {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const meta = new Map(
      db
        .prepare<[], { key: string; value: string }>('SELECT key, value FROM meta')
        .all()
        .map((r) => [r.key, r.value]),
    );
    const identity = meta.has('topic_identity')
      ? (JSON.parse(meta.get('topic_identity')!) as { topic?: string; topicId?: string; clusterId?: string })
      : undefined;
    const partitions = db
      .prepare<[], { partition: number; applied_offset: number; digest: string }>(
        'SELECT partition, applied_offset, digest FROM partitions ORDER BY partition',
      )
      .all()
      .map((r) => ({ partition: r.partition, appliedOffset: r.applied_offset, digest: r.digest }));
    return {
      topic: identity?.topic,
      topicId: identity?.topicId ?? null,
      clusterId: identity?.clusterId ?? null,
      schemaVersion: Number(meta.get('schema_version')),
      partitionCount: Number(meta.get('partitions')),
      partitions,
    };
  } finally {
    db.close();
  }
}

async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const h = crypto.createHash('sha256');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: h.digest('hex') };
}

/** The snapshot file as a stream, for GET /v1/snapshot. */
export function snapshotStream(s: SnapshotFile): Readable {
  return fs.createReadStream(s.file);
}

/**
 * Reads a snapshot from `input` (a file or an HTTP body) into the SQLite file `dest` and verifies it: the
 * bytes against the manifest's sha256, the database's own offsets against the manifest, every partition's
 * digest recomputed from its rows, and schema version, partition count and topic against `expect`. Throws
 * LagoonError `snapshot_invalid` (dest removed) on any mismatch; returns the manifest.
 */
export async function receiveSnapshot(
  input: Readable,
  dest: string,
  expect: { partitions: number; topic: string; topicId?: string | undefined },
): Promise<SnapshotManifest> {
  let header = Buffer.alloc(0);
  let manifest: SnapshotManifest | undefined;
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const gunzip = zlib.createGunzip();
  // Splits the two header lines off the front of the stream; what follows is the gzip body.
  const split = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (manifest !== undefined) return done(null, chunk);
      header = Buffer.concat([header, chunk]);
      const first = header.indexOf(10);
      const second = first < 0 ? -1 : header.indexOf(10, first + 1);
      if (second < 0) {
        if (header.length > MAX_MANIFEST_BYTES) done(invalid('no manifest in the first MiB'));
        else done();
        return;
      }
      if (header.subarray(0, first).toString() !== SNAPSHOT_MAGIC)
        return done(invalid('not a Lagoon snapshot'));
      try {
        manifest = parseManifest(header.subarray(first + 1, second).toString('utf8'));
      } catch (e) {
        return done(invalid((e as Error).message));
      }
      done(null, header.subarray(second + 1));
    },
  });
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  fs.rmSync(dest, { force: true });
  try {
    await pipeline(input, split, gunzip, count, fs.createWriteStream(dest));
    if (manifest === undefined) throw invalid('the snapshot ended before its manifest');
    const m: SnapshotManifest = manifest;
    if (bytes !== m.bytes || hash.digest('hex') !== m.sha256) {
      throw invalid(
        `the database bytes do not match the manifest (${bytes} bytes received, ${m.bytes} expected)`,
      );
    }
    verifyCopy(dest, m, expect);
    return m;
  } catch (e) {
    for (const f of [dest, `${dest}-wal`, `${dest}-shm`]) fs.rmSync(f, { force: true });
    if (e instanceof LagoonError) throw e;
    throw invalid((e as Error).message);
  }
}

function invalid(why: string): LagoonError {
  return new LagoonError('snapshot_invalid', `Snapshot refused: ${why}`, { status: 502 });
}

/** Checks a received database against its manifest and the topic this node serves; recomputes every digest. */
function verifyCopy(
  file: string,
  m: SnapshotManifest,
  expect: { partitions: number; topic: string; topicId?: string | undefined },
): void {
  const facts = readCopy(file);
  if (facts.schemaVersion !== SCHEMA_VERSION) {
    throw invalid(`schema version ${facts.schemaVersion}, this Lagoon reads ${SCHEMA_VERSION}`);
  }
  if (facts.partitionCount !== expect.partitions || facts.partitions.length !== expect.partitions) {
    throw invalid(`built for ${facts.partitionCount} partitions, the topic has ${expect.partitions}`);
  }
  if (m.topic !== expect.topic) throw invalid(`of topic ${m.topic}, this node serves ${expect.topic}`);
  if (expect.topicId && facts.topicId && facts.topicId !== expect.topicId) {
    throw invalid(`of topic id ${facts.topicId}, the topic now has id ${expect.topicId} (it was recreated)`);
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare<
      [number],
      { key: string; version: string; value: string; expires_at: number | null }
    >('SELECT key, version, value, expires_at FROM kv WHERE partition = ?');
    for (const p of facts.partitions) {
      const listed = m.partitions.find((x) => x.partition === p.partition);
      if (!listed || listed.appliedOffset !== p.appliedOffset || listed.digest !== p.digest) {
        throw invalid(
          `partition ${p.partition}: the database's offset and digest differ from the manifest's`,
        );
      }
      const digest = digestOf(
        (function* () {
          for (const r of rows.iterate(p.partition)) {
            yield { key: r.key, version: r.version, value: r.value, expiresAt: r.expires_at };
          }
        })(),
      );
      if (digest !== p.digest) {
        throw invalid(
          `partition ${p.partition}: its rows digest to ${digest}, the manifest says ${p.digest}`,
        );
      }
    }
  } finally {
    db.close();
  }
}
