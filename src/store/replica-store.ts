import type Database from 'better-sqlite3';
import {
  type BatchDecision,
  type BatchPart,
  BOOKKEEPING_RETENTION_MS,
  type Decision,
  decide,
  decideBatch,
  type Entry,
  type MemoryWindows,
  remembers,
  windowsFor,
} from '../core/decide.js';
import { bigIntToDigest, digestToBigInt, EMPTY_DIGEST, entryHash } from '../core/digest.js';
import { partitionOf } from '../core/partitioner.js';
import { decodeRecord, requestFingerprint } from '../core/record.js';
import type { TopicIdentity } from '../core/topic-safety.js';
import type { Step } from '../core/tx-sequencer.js';
import { formatVersion, parseVersion } from '../core/version.js';
import { LagoonError } from '../errors.js';
import { openDurable } from './sqlite.js';

/**
 * Version of the SQLite schema below; bump it with a migration when the schema changes.
 * 2: idempotency entries carry a request fingerprint and log time; write ids are remembered (`wids`).
 * 3: write verdicts carry the log time they were decided at (`writes.at`), for retention.
 */
export const SCHEMA_VERSION = 3;

/** One Kafka record as the consumer hands it over. */
export interface LogRecord {
  offset: number;
  /** Kafka CreateTime, ms. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
}

/** Per-partition replica progress. `appliedOffset` is the next offset to apply (Kafka's committed-offset convention). */
export interface PartitionInfo {
  partition: number;
  appliedOffset: number;
  digest: string;
  /** Records applied so far (each exactly once, whatever redeliveries or crashes happened). */
  recordsApplied: number;
  /** Partition log clock: the largest record CreateTime applied so far, or null before the first record. */
  lastRecordTs: number | null;
}

/** The recorded outcome of one write record (GET /v1/writes/{version}). */
export interface WriteOutcome {
  partition: number;
  offset: number;
  key: string | null;
  status: 'applied' | 'rejected' | 'duplicate';
  /** Reject reason, or for a duplicate the version of the original write. */
  reason: string | null;
}

/** Everything in the store, in a deterministic order: equal on every replica at equal offsets. */
export interface StoreDump {
  kv: Array<Entry & { partition: number }>;
  partitions: PartitionInfo[];
  /** `at`: the partition log time the verdict was recorded at (null for verdicts kept from schema 2). */
  writes: Array<WriteOutcome & { at: number | null }>;
  idem: Array<{
    idemKey: string;
    partition: number | null;
    version: string;
    fp: string | null;
    at: number | null;
  }>;
  wids: Array<{ partition: number; wid: string; version: string; at: number }>;
}

/** The first write with an idempotency key, as the API needs it to answer a retry. */
export interface IdemEntry {
  version: string;
  /** Request fingerprint of that write; null for entries kept from schema 1 (before fingerprints). */
  fp: string | null;
}

/** Test and chaos hooks for applyBatch. */
export interface ApplyHooks {
  /** Called inside the transaction after each applied record; throwing aborts the whole batch. */
  afterRecord?: (offset: number, index: number) => void;
  /**
   * Apply as if the stored applied offset were this one. Only for the 'apply-offsets-first' test break
   * (src/testing/breaks.ts), which commits the offset before the rows; never set by the product.
   */
  fromOffset?: number;
}

interface KvRow {
  key: string;
  partition: number;
  value: string;
  version: string;
  updated_at: number;
  expires_at: number | null;
}

interface IdemRow {
  version: string;
  partition: number | null;
  fp: string | null;
  at: number | null;
}

/** The verdict on an atomic batch (by batch id): `op` is the index of the op whose condition failed, if one did. */
export interface BatchOutcome {
  tx: string;
  status: 'applied' | 'rejected';
  reason: string | null;
  op: number | null;
}

/** One partition's state while a transaction applies records to it. */
interface Cursor {
  partition: number;
  row: PartitionRow;
  appliedOffset: number;
  digest: bigint;
  clock: number | null;
  applied: number;
}

/** Offsets strictly increasing, timestamps integers (Kafka reports -1 for none: deterministic, fine). */
function checkRecord(partition: number, r: LogRecord, prev: number): void {
  if (!Number.isSafeInteger(r.offset) || r.offset < 0 || r.offset <= prev) {
    throw new RangeError(
      `partition ${partition}: offsets must be strictly increasing, got ${r.offset} after ${prev}`,
    );
  }
  if (!Number.isSafeInteger(r.timestamp)) {
    throw new RangeError(`partition ${partition} offset ${r.offset}: invalid timestamp ${r.timestamp}`);
  }
}

interface PartitionRow {
  partition: number;
  applied_offset: number;
  digest: string;
  records_applied: number;
  last_record_ts: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY, partition INT NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL,
  updated_at INT NOT NULL, expires_at INT
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiry ON kv(partition, expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS partitions (
  partition INT PRIMARY KEY, applied_offset INT NOT NULL, digest TEXT NOT NULL,
  records_applied INT NOT NULL, last_record_ts INT
) STRICT;
CREATE TABLE IF NOT EXISTS writes (
  partition INT NOT NULL, offset INT NOT NULL, key TEXT, status TEXT NOT NULL, reason TEXT, at INT,
  PRIMARY KEY (partition, offset)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idem (
  idem_key TEXT PRIMARY KEY, version TEXT NOT NULL, partition INT, fp TEXT, at INT
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS wids (
  partition INT NOT NULL, wid TEXT NOT NULL, version TEXT NOT NULL, at INT NOT NULL,
  PRIMARY KEY (partition, wid)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS wids_age ON wids(partition, at);
CREATE TABLE IF NOT EXISTS batches (
  tx TEXT PRIMARY KEY, partition INT NOT NULL, status TEXT NOT NULL, reason TEXT, op INT, at INT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_age ON batches(partition, at);
`;

/** The tables a snapshot install copies whole (meta is kept: schema version, partitions and retention must match). */
const SNAPSHOT_TABLES = ['kv', 'partitions', 'writes', 'idem', 'wids', 'batches'] as const;

/** Runs after SCHEMA (and any migration) on every open; idempotent. Indexes on migrated columns live here. */
const SCHEMA_AFTER_MIGRATION = `
CREATE INDEX IF NOT EXISTS idem_age ON idem(partition, at) WHERE at IS NOT NULL;
CREATE INDEX IF NOT EXISTS writes_age ON writes(partition, at) WHERE at IS NOT NULL;
`;

/**
 * Schema 2 → 3: verdicts gain the log time they were recorded at. Verdicts kept from schema 2 keep NULL: they
 * are older than every verdict with a time in their partition (the log clock never goes back), so retention
 * drops them together with the first timed verdict after them that ages out (see purgeVerdicts).
 */
function migrateFrom2(db: Database.Database): void {
  const cols = db
    .prepare<[], { name: string }>('PRAGMA table_info(writes)')
    .all()
    .map((c) => c.name);
  if (!cols.includes('at')) db.exec('ALTER TABLE writes ADD COLUMN at INT');
}

/**
 * Schema 1 → 2: idempotency entries gain partition, fingerprint and log time. Entries from schema 1 keep
 * NULL for all three: they match any request (as before) and are never aged out — a finite, legacy set, and
 * the same on every replica, whatever offset it was at when upgraded.
 */
function migrateFrom1(db: Database.Database): void {
  const cols = db
    .prepare<[], { name: string }>('PRAGMA table_info(idem)')
    .all()
    .map((c) => c.name);
  for (const [col, type] of [
    ['partition', 'INT'],
    ['fp', 'TEXT'],
    ['at', 'INT'],
  ] as const) {
    if (!cols.includes(col)) db.exec(`ALTER TABLE idem ADD COLUMN ${col} ${type}`);
  }
}

/** Separates store key and idempotency key in idem_key; keys contain no control characters. */
const IDEM_SEP = '\u001f';

/** Idempotency keys are scoped to their store key: one key lives in one partition, so the scope is log-ordered. */
function idemKeyOf(key: string, idem: string): string {
  return key + IDEM_SEP + idem;
}

/**
 * Smallest string greater than every string that starts with `prefix`, in code-point (= UTF-8 byte) order,
 * or undefined if there is none. Used as an exclusive upper bound so prefix scans use the primary key index.
 */
function prefixUpperBound(prefix: string): string | undefined {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last < 0x10ffff) {
      cps.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}

function toEntry(r: KvRow): Entry {
  return { key: r.key, value: r.value, version: r.version, updatedAt: r.updated_at, expiresAt: r.expires_at };
}

function toPartitionInfo(r: PartitionRow): PartitionInfo {
  return {
    partition: r.partition,
    appliedOffset: r.applied_offset,
    digest: r.digest,
    recordsApplied: r.records_applied,
    lastRecordTs: r.last_record_ts,
  };
}

/**
 * A replica's local SQLite store. Every fetched batch is applied in ONE transaction together with the
 * partition's applied offset, digest and counters, so a crash at any instant loses nothing and applies nothing
 * twice: on restart the consumer resumes from `appliedOffsets()`, and redelivered records are skipped.
 */
export class ReplicaStore {
  readonly partitions: number;
  private readonly db: Database.Database;
  private closed = false;
  private readonly scanCache = new Map<
    string,
    Database.Statement<[Record<string, string | number>], KvRow>
  >();
  private readonly stmt;
  private readonly applyStepsTx: (steps: ReadonlyArray<Step<LogRecord>>) => Array<{
    partition: number;
    appliedOffset: number;
    records: number;
    lastTimestamp: number;
  }>;
  private readonly applyTx: (
    partition: number,
    records: readonly LogRecord[],
    hooks: ApplyHooks | undefined,
  ) => {
    applied: number;
    skipped: number;
  };

  /** Log-time retention of verdicts, idempotency keys and write ids (the same on every replica). */
  readonly retentionMs: number;
  private readonly windows: MemoryWindows;

  private constructor(db: Database.Database, partitions: number, retentionMs: number) {
    this.db = db;
    this.partitions = partitions;
    this.retentionMs = retentionMs;
    this.windows = windowsFor(retentionMs);
    this.stmt = {
      getRow: db.prepare<[string], KvRow>('SELECT * FROM kv WHERE key = ?'),
      upsert: db.prepare(
        `INSERT INTO kv (key, partition, value, version, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET partition = excluded.partition, value = excluded.value,
           version = excluded.version, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
      ),
      deleteRow: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
      expired: db.prepare<[number, number], KvRow>(
        'SELECT * FROM kv WHERE partition = ? AND expires_at IS NOT NULL AND expires_at <= ?',
      ),
      purge: db.prepare<[number, number]>(
        'DELETE FROM kv WHERE partition = ? AND expires_at IS NOT NULL AND expires_at <= ?',
      ),
      getPartition: db.prepare<[number], PartitionRow>('SELECT * FROM partitions WHERE partition = ?'),
      setPartition: db.prepare(
        `UPDATE partitions SET applied_offset = ?, digest = ?, records_applied = ?, last_record_ts = ?
         WHERE partition = ?`,
      ),
      allPartitions: db.prepare<[], PartitionRow>('SELECT * FROM partitions ORDER BY partition'),
      insertWrite: db.prepare(
        'INSERT INTO writes (partition, offset, key, status, reason, at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      // The clock never goes back, so the verdicts past the retention are a prefix of the partition's offsets:
      // the last one bounds what goes (schema-2 verdicts without a time, older than any timed one, included).
      lastAgedWrite: db.prepare<[number, number], { offset: number }>(
        'SELECT offset FROM writes WHERE partition = ? AND at <= ? ORDER BY at DESC, offset DESC LIMIT 1',
      ),
      purgeWritesThrough: db.prepare<[number, number]>(
        'DELETE FROM writes WHERE partition = ? AND offset <= ?',
      ),
      writeAt: db.prepare<[number, number], { status: string; reason: string | null; at: number | null }>(
        'SELECT status, reason, at FROM writes WHERE partition = ? AND offset = ?',
      ),
      getWrite: db.prepare<[number, number], WriteOutcome>(
        'SELECT partition, offset, key, status, reason FROM writes WHERE partition = ? AND offset = ?',
      ),
      getIdem: db.prepare<[string], IdemRow>(
        'SELECT version, partition, fp, at FROM idem WHERE idem_key = ?',
      ),
      // Replaces an entry that is out of its window but not yet pruned (pruning runs at the end of a batch).
      putIdem: db.prepare(
        `INSERT INTO idem (idem_key, version, partition, fp, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(idem_key) DO UPDATE SET version = excluded.version, partition = excluded.partition,
           fp = excluded.fp, at = excluded.at`,
      ),
      pruneIdem: db.prepare<[number, number]>('DELETE FROM idem WHERE partition = ? AND at <= ?'),
      getWid: db.prepare<[number, string], { version: string; at: number }>(
        'SELECT version, at FROM wids WHERE partition = ? AND wid = ?',
      ),
      putWid: db.prepare(
        `INSERT INTO wids (partition, wid, version, at) VALUES (?, ?, ?, ?)
         ON CONFLICT(partition, wid) DO UPDATE SET version = excluded.version, at = excluded.at`,
      ),
      pruneWids: db.prepare<[number, number]>('DELETE FROM wids WHERE partition = ? AND at <= ?'),
      putBatch: db.prepare(
        'INSERT OR IGNORE INTO batches (tx, partition, status, reason, op, at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      getBatch: db.prepare<[string], BatchOutcome>('SELECT tx, status, reason, op FROM batches WHERE tx = ?'),
      pruneBatches: db.prepare<[number, number]>('DELETE FROM batches WHERE partition = ? AND at <= ?'),
      // Expiry is judged by the key's partition clock, as conditional writes judge it (see get()).
      // With the partition's applied offset, which the row was read at (a session token's offset).
      get: db.prepare<[string], KvRow & { applied: number }>(
        `SELECT kv.*, p.applied_offset AS applied FROM kv JOIN partitions p ON p.partition = kv.partition
         WHERE kv.key = ? AND (kv.expires_at IS NULL OR p.last_record_ts IS NULL OR kv.expires_at > p.last_record_ts)`,
      ),
      clock: db.prepare<[number], { last_record_ts: number | null }>(
        'SELECT last_record_ts FROM partitions WHERE partition = ?',
      ),
    };
    this.applyTx = db.transaction((partition, records, hooks) => this.applyInTx(partition, records, hooks));
    this.applyStepsTx = db.transaction((steps: ReadonlyArray<Step<LogRecord>>) => this.applyStepsInTx(steps));
  }

  /**
   * Opens (creating if missing) the store at `path` for a topic with `opts.partitions` partitions.
   * `retentionMs` (log time; default BOOKKEEPING_RETENTION_MS) is bound to the store on first open, like the
   * partition count: replicas that remembered for different times would decide retries differently.
   */
  static open(path: string, opts: { partitions: number; retentionMs?: number | undefined }): ReplicaStore {
    if (!Number.isSafeInteger(opts.partitions) || opts.partitions < 1) {
      throw new RangeError(`invalid partition count ${opts.partitions}`);
    }
    const retentionMs = opts.retentionMs ?? BOOKKEEPING_RETENTION_MS;
    if (!Number.isSafeInteger(retentionMs) || retentionMs < 1) {
      throw new RangeError(`invalid retention ${retentionMs}`);
    }
    // Durable (synchronous=FULL): with NORMAL the store would stay consistent (data and offset commit
    // together) but could move back in time on power loss: outcomes already reported (a 200 for a conditional
    // put, a session read at that offset) would vanish, Kafka's committed offsets would be ahead of the store,
    // and records already deleted by retention could not be fetched again.
    const db = openDurable(path);
    try {
      db.exec(SCHEMA);
      db.transaction(() => {
        const meta = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
        const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
        let schema = meta.get('schema_version')?.value;
        if (schema === '1') {
          migrateFrom1(db);
          schema = '2';
        }
        if (schema === '2') {
          migrateFrom2(db);
          db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION));
          schema = String(SCHEMA_VERSION);
        }
        db.exec(SCHEMA_AFTER_MIGRATION);
        if (schema === undefined) setMeta.run('schema_version', String(SCHEMA_VERSION));
        else if (schema !== String(SCHEMA_VERSION)) {
          throw new LagoonError(
            'store_schema_mismatch',
            `store ${path} has schema version ${schema}, this Lagoon expects ${SCHEMA_VERSION}`,
          );
        }
        const parts = meta.get('partitions')?.value;
        if (parts === undefined) setMeta.run('partitions', String(opts.partitions));
        else if (parts !== String(opts.partitions)) {
          throw new LagoonError(
            'store_partition_mismatch',
            `store ${path} was built for ${parts} partitions, the topic has ${opts.partitions}; ` +
              'keys would now map to other partitions: delete the store file to rebuild the replica',
          );
        }
        const retention = meta.get('bookkeeping_retention_ms')?.value;
        if (retention === undefined) setMeta.run('bookkeeping_retention_ms', String(retentionMs));
        else if (retention !== String(retentionMs)) {
          throw new LagoonError(
            'store_retention_mismatch',
            `store ${path} keeps its bookkeeping for ${retention} ms of log time, this node is configured for ` +
              `${retentionMs} ms; every replica must use the same retention (it decides which retries are ` +
              'recognised): set LAGOON_BOOKKEEPING_RETENTION_MS back, or delete the store file to rebuild the replica',
          );
        }
        const ins = db.prepare(
          'INSERT OR IGNORE INTO partitions (partition, applied_offset, digest, records_applied, last_record_ts) VALUES (?, 0, ?, 0, NULL)',
        );
        for (let p = 0; p < opts.partitions; p++) ins.run(p, EMPTY_DIGEST);
      })();
    } catch (e) {
      db.close();
      throw e;
    }
    return new ReplicaStore(db, opts.partitions, retentionMs);
  }

  /** The topic this store was built from (bound on first contact), or undefined before that. */
  topicIdentity(): TopicIdentity | undefined {
    this.assertOpen();
    const raw = this.db
      .prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?')
      .get('topic_identity')?.value;
    return raw === undefined ? undefined : (JSON.parse(raw) as TopicIdentity);
  }

  /**
   * Binds the store to a topic (or fills in a topic id learned later). Offsets in this store mean something
   * only in that one log; the replica refuses to apply from any other (core/topic-safety `identityProblem`).
   */
  bindTopicIdentity(id: TopicIdentity): void {
    this.assertOpen();
    this.db
      .prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      )
      .run(
        'topic_identity',
        JSON.stringify({ clusterId: id.clusterId, topic: id.topic, topicId: id.topicId }),
      );
  }

  /** Closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /**
   * Applies one fetched batch of a partition atomically: records below the stored applied offset are skipped
   * (redelivery), the others are decoded, decided and written, and the applied offset becomes last offset + 1.
   * Offsets must be strictly increasing; gaps (transaction markers, compaction) are fine.
   */
  applyBatch(
    partition: number,
    records: readonly LogRecord[],
    hooks?: ApplyHooks,
  ): { applied: number; skipped: number } {
    this.assertOpen();
    this.assertPartition(partition);
    if (records.length === 0) return { applied: 0, skipped: 0 };
    return this.applyTx(partition, records, hooks);
  }

  private applyInTx(
    partition: number,
    records: readonly LogRecord[],
    hooks: ApplyHooks | undefined,
  ): { applied: number; skipped: number } {
    const c = this.openCursor(partition, hooks?.fromOffset);
    let skipped = 0;
    let prev = -1;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      checkRecord(partition, r, prev);
      prev = r.offset;
      if (r.offset < c.appliedOffset) {
        skipped++;
        continue;
      }
      this.applyRecord(c, r);
      hooks?.afterRecord?.(r.offset, i);
    }
    this.closeCursor(c);
    return { applied: c.applied, skipped };
  }

  /**
   * Applies what the sequencer (core/tx-sequencer) released, in one SQLite transaction: runs of plain records,
   * whole batches (every part at once, all or nothing) and rejected parts of batches that lost a wait-for cycle.
   * Returns each touched partition's new applied offset, records applied and last record time.
   */
  applySteps(steps: ReadonlyArray<Step<LogRecord>>): Array<{
    partition: number;
    appliedOffset: number;
    records: number;
    lastTimestamp: number;
  }> {
    this.assertOpen();
    if (steps.length === 0) return [];
    return this.applyStepsTx(steps);
  }

  private applyStepsInTx(steps: ReadonlyArray<Step<LogRecord>>) {
    const cursors = new Map<number, Cursor>();
    const cursor = (p: number) => {
      this.assertPartition(p);
      let c = cursors.get(p);
      if (c === undefined) {
        c = this.openCursor(p);
        cursors.set(p, c);
      }
      return c;
    };
    const lastTs = new Map<number, number>();
    for (const step of steps) {
      if (step.kind === 'records') {
        const c = cursor(step.partition);
        let prev = -1;
        for (const r of step.records) {
          checkRecord(step.partition, r, prev);
          prev = r.offset;
          if (r.offset < c.appliedOffset) continue;
          this.applyRecord(c, r);
          lastTs.set(step.partition, r.timestamp);
        }
        c.appliedOffset = Math.max(c.appliedOffset, step.through);
      } else if (step.kind === 'conflict') {
        const c = cursor(step.partition);
        const r = step.record;
        checkRecord(step.partition, r, -1);
        if (r.offset < c.appliedOffset) continue;
        c.clock = c.clock === null ? r.timestamp : Math.max(c.clock, r.timestamp);
        const rec = decodeRecord(r.key, r.value);
        const key = rec.op === 'hb' ? null : rec.key;
        this.stmt.insertWrite.run(step.partition, r.offset, key, 'rejected', 'batch_conflict', c.clock);
        this.stmt.putBatch.run(step.tx, step.partition, 'rejected', 'batch_conflict', null, c.clock);
        c.appliedOffset = r.offset + 1;
        c.applied++;
        lastTs.set(step.partition, r.timestamp);
      } else {
        this.applyBatchStep(step, cursor, lastTs);
      }
    }
    const out = [];
    for (const c of cursors.values()) {
      this.closeCursor(c);
      out.push({
        partition: c.partition,
        appliedOffset: c.appliedOffset,
        records: c.applied,
        lastTimestamp: lastTs.get(c.partition) ?? c.clock ?? 0,
      });
    }
    return out;
  }

  /** One whole batch: decided by decideBatch on the parts and the current entries, applied all or nothing. */
  private applyBatchStep(
    step: Extract<Step<LogRecord>, { kind: 'batch' }>,
    cursor: (p: number) => Cursor,
    lastTs: Map<number, number>,
  ): void {
    const s = this.stmt;
    const cs = step.parts.map((x) => cursor(x.partition));
    // Already applied (a redelivery the sequencer could not know of): a batch moves all its partitions at once.
    if (step.parts.some((x, i) => x.record.offset < cs[i]!.appliedOffset)) return;
    const parts: BatchPart[] = [];
    const keys: Array<string | null> = [];
    let malformed = false;
    step.parts.forEach((x, i) => {
      const c = cs[i]!;
      checkRecord(x.partition, x.record, -1);
      c.clock = c.clock === null ? x.record.timestamp : Math.max(c.clock, x.record.timestamp);
      const rec = decodeRecord(x.record.key, x.record.value);
      keys.push(rec.op === 'hb' ? null : rec.key);
      if (rec.op !== 'tx') malformed = true;
      else
        parts.push({
          partition: x.partition,
          offset: x.record.offset,
          appendTime: x.record.timestamp,
          clock: c.clock,
          rec,
        });
    });
    const decision: BatchDecision = malformed
      ? { kind: 'reject', reason: 'invalid_record' }
      : decideBatch(
          parts,
          (key) => {
            const row = s.getRow.get(key);
            return row === undefined ? undefined : toEntry(row);
          },
          {
            partitionOf: (key) => partitionOf(key, this.partitions),
            resolveVersion: (p, v) =>
              this.resolveVersion(v, cs[step.parts.findIndex((x) => x.partition === p)]!.clock!),
          },
        );
    if (decision.kind === 'apply') {
      for (const { part, key, decision: d } of decision.effects) {
        const c = cs[part]!;
        const current = s.getRow.get(key);
        if (current !== undefined) c.digest -= entryHash(toEntry(current));
        if (d.kind === 'put') {
          const e = d.entry;
          s.upsert.run(e.key, c.partition, e.value, e.version, e.updatedAt, e.expiresAt);
          c.digest += entryHash(e);
        } else if (current !== undefined) s.deleteRow.run(key);
      }
    }
    const status = decision.kind === 'apply' ? 'applied' : 'rejected';
    const reason = decision.kind === 'apply' ? null : decision.reason;
    step.parts.forEach((x, i) => {
      const c = cs[i]!;
      s.insertWrite.run(x.partition, x.record.offset, keys[i] ?? null, status, reason, c.clock);
      c.appliedOffset = x.record.offset + 1;
      c.applied++;
      lastTs.set(x.partition, x.record.timestamp);
    });
    s.putBatch.run(
      step.tx,
      step.parts[0]!.partition,
      status,
      reason,
      decision.kind === 'reject' ? (decision.op ?? null) : null,
      cs[0]!.clock,
    );
  }

  /** The verdict on a batch, by batch id, once this replica decided it. */
  batchOutcome(tx: string): BatchOutcome | undefined {
    this.assertOpen();
    return this.stmt.getBatch.get(tx);
  }

  private openCursor(partition: number, fromOffset?: number): Cursor {
    const row = this.stmt.getPartition.get(partition);
    if (row === undefined) throw new Error(`partition row ${partition} missing`);
    return {
      partition,
      row,
      appliedOffset: fromOffset ?? row.applied_offset,
      digest: digestToBigInt(row.digest),
      clock: row.last_record_ts,
      applied: 0,
    };
  }

  /** Decides and applies one plain record at the cursor (its offset at or past the applied offset). */
  private applyRecord(c: Cursor, r: LogRecord): void {
    const s = this.stmt;
    const partition = c.partition;
    // The partition's log clock never runs backwards, so expiry is monotone and purging is order-independent.
    const clock = c.clock === null ? r.timestamp : Math.max(c.clock, r.timestamp);
    c.clock = clock;
    const rec = decodeRecord(r.key, r.value);
    const key = rec.op === 'hb' ? null : rec.key;
    const current = key === null ? undefined : s.getRow.get(key);
    const write = rec.op === 'put' || rec.op === 'del' ? rec : undefined;
    const idemKey = write?.idem === undefined ? undefined : idemKeyOf(write.key, write.idem);
    const idemRow = idemKey === undefined ? undefined : s.getIdem.get(idemKey);
    const widRow = write === undefined ? undefined : s.getWid.get(partition, write.wid);
    const d: Decision = decide(current === undefined ? undefined : toEntry(current), rec, {
      partition,
      offset: r.offset,
      timestamp: clock,
      appendTime: r.timestamp,
      // Legacy entries (schema 1) have no log time: always remembered, as they were.
      seenIdem:
        idemRow === undefined
          ? undefined
          : { version: idemRow.version, fp: idemRow.fp, at: idemRow.at ?? clock },
      seenWid: widRow,
      resolveVersion: (v) => this.resolveVersion(v, clock),
      windows: this.windows,
    });
    switch (d.kind) {
      case 'put': {
        if (current !== undefined) c.digest -= entryHash(toEntry(current));
        const e = d.entry;
        s.upsert.run(e.key, partition, e.value, e.version, e.updatedAt, e.expiresAt);
        c.digest += entryHash(e);
        s.insertWrite.run(partition, r.offset, key, 'applied', null, clock);
        break;
      }
      case 'delete':
        if (current !== undefined) {
          c.digest -= entryHash(toEntry(current));
          s.deleteRow.run(current.key);
        }
        s.insertWrite.run(partition, r.offset, key, 'applied', null, clock);
        break;
      case 'reject':
        s.insertWrite.run(partition, r.offset, key, 'rejected', d.reason, clock);
        break;
      case 'duplicate':
        s.insertWrite.run(partition, r.offset, key, 'duplicate', d.of, clock);
        break;
      case 'noop':
        break;
    }
    const version = formatVersion(partition, r.offset);
    const decided = d.kind === 'put' || d.kind === 'delete' || d.kind === 'reject';
    // Remember the first attempt of an idempotent write, whether it was applied or rejected — but not a request
    // that reused another request's key (that one keeps its entry), nor one that landed after its deadline
    // (the client was told it timed out: its retry must still be able to apply).
    if (
      write !== undefined &&
      idemKey !== undefined &&
      decided &&
      !(d.kind === 'reject' && (d.reason === 'idempotency_key_reused' || d.reason === 'deadline_passed'))
    ) {
      s.putIdem.run(idemKey, version, partition, requestFingerprint(write), clock);
    }
    // Remember the write id with the version whose outcome this write got (the original, for an idempotent
    // retry), so a second copy of this record answers the same. A copy itself is not remembered again.
    const copy = widRow !== undefined && remembers(widRow.at, clock, this.windows.widMs);
    if (write !== undefined && !(d.kind === 'duplicate' && copy)) {
      s.putWid.run(partition, write.wid, d.kind === 'duplicate' ? d.of : version, clock);
    }
    c.appliedOffset = r.offset + 1;
    c.applied++;
  }

  /** Ends a cursor: expiry and retention by the partition clock, then the partition row (offset, digest, clock). */
  private closeCursor(c: Cursor): void {
    const s = this.stmt;
    const { partition, clock } = c;
    if (c.applied > 0 && clock !== null) {
      // Drop entries that expired by log time. Deterministic: the clock is part of the replicated state.
      for (const ex of s.expired.all(partition, clock)) c.digest -= entryHash(toEntry(ex));
      s.purge.run(partition, clock);
      // Forget write ids, idempotency keys and verdicts older than their windows, by log time. Only space:
      // decide ignores such entries anyway, so when this runs (batch boundaries differ between replicas)
      // changes no verdict, and replicas at equal offsets (equal clocks) hold equal rows.
      s.pruneWids.run(partition, clock - this.windows.widMs);
      s.pruneIdem.run(partition, clock - this.windows.idemMs);
      s.pruneBatches.run(partition, clock - this.retentionMs);
      this.purgeVerdicts(partition, clock - this.retentionMs);
    }
    if (c.applied > 0 || c.appliedOffset !== c.row.applied_offset) {
      s.setPartition.run(
        c.appliedOffset,
        bigIntToDigest(c.digest),
        c.row.records_applied + c.applied,
        clock,
        partition,
      );
    }
  }

  /**
   * The 'apply-offsets-first' test break only (src/testing/breaks.ts): moves a partition's applied offset
   * without applying anything, in a transaction of its own. The product never calls this.
   */
  advanceOffsetOnlyForTestBreak(partition: number, offset: number): void {
    this.assertOpen();
    this.assertPartition(partition);
    this.db.prepare('UPDATE partitions SET applied_offset = ? WHERE partition = ?').run(offset, partition);
  }

  /** Applied offset (next offset to apply) per partition. */
  appliedOffsets(): Map<number, number> {
    this.assertOpen();
    return new Map(this.stmt.allPartitions.all().map((r) => [r.partition, r.applied_offset]));
  }

  /** One partition's applied offset (next offset to apply): a single-row read, for the hot read path. */
  appliedOffset(partition: number): number {
    this.assertOpen();
    return this.stmt.getPartition.get(partition)?.applied_offset ?? 0;
  }

  /** All partition rows, ordered by partition. */
  partitionInfo(): PartitionInfo[] {
    this.assertOpen();
    return this.stmt.allPartitions.all().map(toPartitionInfo);
  }

  /** Per-partition digest at its applied offset (GET /v1/digest). */
  digests(): Array<{ partition: number; appliedOffset: number; digest: string }> {
    return this.partitionInfo().map((p) => ({
      partition: p.partition,
      appliedOffset: p.appliedOffset,
      digest: p.digest,
    }));
  }

  /**
   * Reads a key. Expiry is judged by the key's partition clock as applied (the largest record timestamp), the
   * clock conditional writes use, never the serving node's wall clock: every replica at the same offset gives
   * the same answer, and a read and an `If-None-Match: *` at that offset agree whether the key exists.
   */
  get(key: string): Entry | undefined {
    this.assertOpen();
    const r = this.stmt.get.get(key);
    return r === undefined ? undefined : toEntry(r);
  }

  /**
   * The live entry of `key` (as get) and the applied offset of its partition as of that read (for a session
   * token): one statement when the key is there, a second one-row read when it is not.
   */
  readKey(key: string): { entry: Entry | undefined; appliedOffset: number } {
    this.assertOpen();
    const r = this.stmt.get.get(key);
    if (r !== undefined) return { entry: toEntry(r), appliedOffset: r.applied };
    return { entry: undefined, appliedOffset: this.appliedOffset(partitionOf(key, this.partitions)) };
  }

  /**
   * Live entries whose key starts with `prefix` and is greater than `after` (a cursor: the last key of the
   * previous page), in UTF-8 byte order, at most `limit`.
   */
  scan(opts: { prefix: string; after?: string | undefined; limit: number }): Entry[] {
    this.assertOpen();
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 0)
      throw new RangeError(`invalid limit ${opts.limit}`);
    const upper = opts.prefix === '' ? undefined : prefixUpperBound(opts.prefix);
    const params: Record<string, string | number> = {
      limit: opts.limit,
      prefix: opts.prefix,
    };
    if (upper !== undefined) params['upper'] = upper;
    if (opts.after !== undefined) params['after'] = opts.after;
    return this.scanStatement(upper !== undefined, opts.after !== undefined)
      .all(params)
      .map(toEntry);
  }

  /** One compiled statement per query shape, so a scan is a range walk of the primary key that stops at limit. */
  private scanStatement(
    hasUpper: boolean,
    hasAfter: boolean,
  ): Database.Statement<[Record<string, string | number>], KvRow> {
    const shape = `${hasUpper ? 'u' : ''}${hasAfter ? 'a' : ''}`;
    let stmt = this.scanCache.get(shape);
    if (stmt === undefined) {
      // Expiry by each row's partition clock, as in get().
      const where = [
        'key >= @prefix',
        '(expires_at IS NULL OR expires_at > coalesce((SELECT last_record_ts FROM partitions p WHERE p.partition = kv.partition), -1))',
      ];
      if (hasUpper) where.push('key < @upper');
      if (hasAfter) where.push('key > @after');
      stmt = this.db.prepare(`SELECT kv.* FROM kv WHERE ${where.join(' AND ')} ORDER BY key LIMIT @limit`);
      this.scanCache.set(shape, stmt);
    }
    return stmt;
  }

  /** Outcome of the write record at a log position, or undefined if it is not applied (yet) or not a write. */
  writeOutcome(partition: number, offset: number): WriteOutcome | undefined {
    this.assertOpen();
    return this.stmt.getWrite.get(partition, offset);
  }

  /**
   * The first write to `key` that carried idempotency key `idem`, if it has been applied and is still
   * remembered (IDEM_WINDOW_MS of the partition's log time) — the same rule the replica decides by.
   */
  idemLookup(key: string, idem: string): IdemEntry | undefined {
    this.assertOpen();
    const row = this.stmt.getIdem.get(idemKeyOf(key, idem));
    if (row === undefined) return undefined;
    if (row.at !== null && row.partition !== null) {
      const clock = this.stmt.clock.get(row.partition)?.last_record_ts;
      if (clock != null && !remembers(row.at, clock, this.windows.idemMs)) return undefined;
    }
    return { version: row.version, fp: row.fp };
  }

  /**
   * The outcome that answers the write at a log position: its own, or — for a record applied as a duplicate
   * (an idempotent retry, or a second copy of a record) — the original's, with the original's version.
   * Undefined if not applied yet or not a write.
   */
  finalOutcome(partition: number, offset: number): (WriteOutcome & { version: string }) | undefined {
    this.assertOpen();
    let w = this.stmt.getWrite.get(partition, offset);
    // Originals are never duplicates themselves (see applyInTx), so one hop suffices; the bound is defensive.
    for (let hops = 0; w?.status === 'duplicate' && hops < 4; hops++) {
      const pos = w.reason === null ? undefined : parseVersion(w.reason);
      if (pos === undefined) return undefined;
      w = this.stmt.getWrite.get(pos.partition, pos.offset);
    }
    if (w === undefined || w.status === 'duplicate') return undefined;
    return { ...w, version: formatVersion(w.partition, w.offset) };
  }

  /**
   * If-Match names a version; a version handed out for a duplicate copy stands for the original write — while the
   * copy's verdict is within the retention at log time `clock` (a verdict past it counts as gone, pruned or not).
   */
  private resolveVersion(v: string, clock: number): string {
    const pos = parseVersion(v);
    if (pos === undefined) return v;
    const w = this.stmt.writeAt.get(pos.partition, pos.offset);
    if (w?.status !== 'duplicate' || w.reason === null) return v;
    return w.at !== null && !remembers(w.at, clock, this.retentionMs) ? v : w.reason;
  }

  /** Drops the partition's verdicts recorded at log time `cutoff` or before (the verdicts are ordered by time). */
  private purgeVerdicts(partition: number, cutoff: number): void {
    const last = this.stmt.lastAgedWrite.get(partition, cutoff);
    if (last !== undefined) this.stmt.purgeWritesThrough.run(partition, last.offset);
  }

  /** True while nothing was ever applied: every partition at offset 0 and no row in any table. */
  isEmpty(): boolean {
    this.assertOpen();
    const applied = this.db
      .prepare<[], { n: number }>('SELECT max(applied_offset) AS n FROM partitions')
      .get();
    const rows = this.db
      .prepare<[], { n: number }>('SELECT count(*) AS n FROM (SELECT 1 FROM kv LIMIT 1)')
      .get();
    return (applied?.n ?? 0) === 0 && (rows?.n ?? 0) === 0;
  }

  /**
   * An online copy of the whole store into `dest` (SQLite's backup API, in steps, the event loop free between
   * them). Every apply is one transaction on this connection and the backup sees each of them whole, so the
   * copy holds one committed state: data, applied offsets and digests that match.
   */
  async backupTo(dest: string): Promise<void> {
    this.assertOpen();
    await this.db.backup(dest);
  }

  /**
   * Replaces this store's whole state with the one in the SQLite file `src` (a verified snapshot), in ONE
   * transaction: a crash during the install leaves the store as it was. The snapshot must have this store's
   * schema version and partition count (checked by the caller); its topic identity replaces this store's.
   */
  installFrom(src: string): void {
    this.assertOpen();
    this.db.prepare('ATTACH DATABASE ? AS snap').run(src);
    try {
      this.db.transaction(() => {
        for (const table of SNAPSHOT_TABLES) {
          // By column name: a store migrated from an older schema may have its columns in another order.
          const cols = this.db
            .prepare<[], { name: string }>(`PRAGMA main.table_info(${table})`)
            .all()
            .map((c) => `"${c.name}"`)
            .join(', ');
          this.db.exec(
            `DELETE FROM main.${table}; INSERT INTO main.${table} (${cols}) SELECT ${cols} FROM snap.${table};`,
          );
        }
        this.db.exec(
          "DELETE FROM main.meta WHERE key = 'topic_identity'; INSERT INTO main.meta SELECT * FROM snap.meta WHERE key = 'topic_identity';",
        );
      })();
    } finally {
      this.db.exec('DETACH DATABASE snap');
    }
  }

  /** Entire state in a deterministic order, for tests and convergence checks. */
  dumpState(): StoreDump {
    this.assertOpen();
    const kv = this.db
      .prepare<[], KvRow>('SELECT * FROM kv ORDER BY key')
      .all()
      .map((r) => ({ ...toEntry(r), partition: r.partition }));
    const writes = this.db
      .prepare<[], StoreDump['writes'][number]>(
        'SELECT partition, offset, key, status, reason, at FROM writes ORDER BY partition, offset',
      )
      .all();
    const idem = this.db
      .prepare<[], StoreDump['idem'][number]>(
        'SELECT idem_key AS idemKey, partition, version, fp, at FROM idem ORDER BY idem_key',
      )
      .all();
    const wids = this.db
      .prepare<[], StoreDump['wids'][number]>(
        'SELECT partition, wid, version, at FROM wids ORDER BY partition, wid',
      )
      .all();
    return { kv, partitions: this.partitionInfo(), writes, idem, wids };
  }

  private assertOpen(): void {
    if (this.closed) throw new LagoonError('store_closed', 'replica store is closed');
  }

  private assertPartition(p: number): void {
    if (!Number.isInteger(p) || p < 0 || p >= this.partitions) {
      throw new RangeError(`partition ${p} out of range 0..${this.partitions - 1}`);
    }
  }
}
