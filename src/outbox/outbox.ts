import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { LagoonError } from '../errors.js';
import { openDurable } from '../store/sqlite.js';

/**
 * The node's durable outbox for buffered writes: records Kafka could not take, kept in their own SQLite file
 * (WAL, synchronous=FULL — an entry is on disk before the client hears 202) until the drainer has appended them
 * to the log. Entries keep the exact record bytes (write id and idempotency key included), so every resend is
 * the same record and the replicas apply it once. After the log took an entry, its position is remembered
 * (`sent`) so `GET /v1/writes/{id}` can answer with the replica's verdict.
 */

/** A buffered write waiting for the log. */
export interface OutboxEntry {
  /** Insertion order; the drain order within a key. */
  seq: number;
  /** The id the client got (`ob-…`); never a version, so `/v1/writes/{id}` can tell them apart. */
  id: string;
  key: string;
  partition: number;
  op: 'put' | 'del';
  /** The Kafka record value, byte for byte as it will be (re)sent. */
  record: Buffer;
  /** The idempotency key the record carries: the client's, or one made for the entry. */
  idem: string;
  /** Request fingerprint (core/record requestFingerprint): a client retry under the same key must match it. */
  fp: string;
  /** Wall-clock ms the entry was buffered (local bookkeeping only; never replicated). */
  createdAt: number;
}

/** Where an outbox id stands. */
export type OutboxLookup =
  | { state: 'buffered'; entry: OutboxEntry }
  | {
      state: 'sent';
      id: string;
      key: string;
      partition: number;
      offset: number;
      createdAt: number;
      sentAt: number;
    };

/** Depth and age, for /v1/status, /v1/lag, the dashboard and /metrics. */
export interface OutboxStats {
  records: number;
  /** Age of the oldest entry in seconds (0 when empty). */
  oldestSeconds: number;
  max: number;
}

const OUTBOX_ID_RE = /^ob-[A-Za-z0-9_-]{16}$/;

/** True if `s` has the shape of an outbox id (and so is not a version). */
export function isOutboxId(s: string): boolean {
  return OUTBOX_ID_RE.test(s);
}

/** A fresh outbox id: `ob-` and 12 random bytes. */
export function newOutboxId(): string {
  return `ob-${randomBytes(12).toString('base64url')}`;
}

/** The idempotency key an entry carries when the client sent none. */
export function outboxIdemKey(id: string): string {
  return `lagoon-outbox:${id}`;
}

/** The outbox file beside a replica store: `…/lagoon.db` → `…/lagoon.outbox.db`. */
export function outboxPathFor(db: string): string {
  return db.endsWith('.db') ? `${db.slice(0, -3)}.outbox.db` : `${db}.outbox.db`;
}

interface PendingRow {
  seq: number;
  id: string;
  key: string;
  partition: number;
  op: string;
  record: Buffer;
  idem: string;
  fp: string;
  created_at: number;
}

interface SentRow {
  id: string;
  key: string;
  partition: number;
  offset: number;
  created_at: number;
  sent_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pending (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, key TEXT NOT NULL, partition INT NOT NULL,
  op TEXT NOT NULL, record BLOB NOT NULL, idem TEXT NOT NULL, fp TEXT NOT NULL, created_at INT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS pending_key ON pending(key, seq);
CREATE INDEX IF NOT EXISTS pending_partition ON pending(partition, seq);
CREATE TABLE IF NOT EXISTS sent (
  id TEXT PRIMARY KEY, key TEXT NOT NULL, partition INT NOT NULL, offset INT NOT NULL,
  created_at INT NOT NULL, sent_at INT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sent_age ON sent(sent_at);
`;

const toEntry = (r: PendingRow): OutboxEntry => ({
  seq: r.seq,
  id: r.id,
  key: r.key,
  partition: r.partition,
  op: r.op === 'del' ? 'del' : 'put',
  record: r.record,
  idem: r.idem,
  fp: r.fp,
  createdAt: r.created_at,
});

/** The outbox store. One process owns the file; all calls are synchronous and each change is one commit. */
export class Outbox {
  readonly max: number;
  private readonly db: Database.Database;
  private readonly stmt;
  /** Pending entries per key, so the write path can ask "anything buffered for this key?" without SQLite. */
  private readonly perKey = new Map<string, number>();
  private count = 0;
  private closed = false;
  private readonly listeners = new Set<() => void>();

  private constructor(db: Database.Database, max: number) {
    this.db = db;
    this.max = max;
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO pending (id, key, partition, op, record, idem, fp, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      byId: db.prepare<[string], PendingRow>('SELECT * FROM pending WHERE id = ?'),
      sentById: db.prepare<[string], SentRow>('SELECT * FROM sent WHERE id = ?'),
      latestForKey: db.prepare<[string], PendingRow>(
        'SELECT * FROM pending WHERE key = ? ORDER BY seq DESC LIMIT 1',
      ),
      byIdem: db.prepare<[string, string], PendingRow>(
        'SELECT * FROM pending WHERE key = ? AND idem = ? ORDER BY seq LIMIT 1',
      ),
      head: db.prepare<[number, number], PendingRow>(
        'SELECT * FROM pending WHERE partition = ? ORDER BY seq LIMIT ?',
      ),
      partitions: db.prepare<[], { partition: number }>('SELECT DISTINCT partition FROM pending'),
      oldest: db.prepare<[], { created_at: number }>('SELECT created_at FROM pending ORDER BY seq LIMIT 1'),
      remove: db.prepare<[number]>('DELETE FROM pending WHERE seq = ?'),
      insertSent: db.prepare(
        'INSERT OR REPLACE INTO sent (id, key, partition, offset, created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      purgeSent: db.prepare<[number]>('DELETE FROM sent WHERE sent_at < ?'),
      all: db.prepare<[], { key: string; n: number }>('SELECT key, count(*) AS n FROM pending GROUP BY key'),
    };
    for (const r of this.stmt.all.all()) {
      this.perKey.set(r.key, r.n);
      this.count += r.n;
    }
  }

  /** Opens (creating if missing) the outbox at `path`, holding at most `max` entries. */
  static open(path: string, opts: { max: number }): Outbox {
    // Durable: a 202 promises the write survives a crash of the node, so the commit must be on disk first.
    const db = openDurable(path);
    try {
      db.exec(SCHEMA);
    } catch (e) {
      db.close();
      throw e;
    }
    return new Outbox(db, opts.max);
  }

  /**
   * Buffers one write, durably, behind every earlier entry. Throws 503 `outbox_full` (definite: nothing stored)
   * when the outbox holds `max` entries.
   */
  add(e: Omit<OutboxEntry, 'seq' | 'createdAt'>, now = Date.now()): OutboxEntry {
    this.assertOpen();
    if (this.count >= this.max) {
      throw new LagoonError(
        'outbox_full',
        `The outbox of this node holds ${this.count} writes (LAGOON_OUTBOX_MAX=${this.max}) waiting for Kafka; the write was not stored.`,
        { status: 503, retryable: true, definite: true, details: { outboxRecords: this.count } },
      );
    }
    const r = this.stmt.insert.run(e.id, e.key, e.partition, e.op, e.record, e.idem, e.fp, now);
    this.count++;
    this.perKey.set(e.key, (this.perKey.get(e.key) ?? 0) + 1);
    return { ...e, seq: Number(r.lastInsertRowid), createdAt: now };
  }

  /** True if `key` has entries waiting on this node. */
  hasPending(key: string): boolean {
    return (this.perKey.get(key) ?? 0) > 0;
  }

  /** The latest entry waiting for `key` (what a `Lagoon-Read-Buffered` read shows), if any. */
  latestFor(key: string): OutboxEntry | undefined {
    this.assertOpen();
    if (!this.hasPending(key)) return undefined;
    const r = this.stmt.latestForKey.get(key);
    return r === undefined ? undefined : toEntry(r);
  }

  /** The waiting entry that carries idempotency key `idem` for `key` (a client retrying a buffered write). */
  pendingByIdem(key: string, idem: string): OutboxEntry | undefined {
    this.assertOpen();
    if (!this.hasPending(key)) return undefined;
    const r = this.stmt.byIdem.get(key, idem);
    return r === undefined ? undefined : toEntry(r);
  }

  /** The oldest `limit` entries of a partition, in buffer order. */
  head(partition: number, limit: number): OutboxEntry[] {
    this.assertOpen();
    return this.stmt.head.all(partition, limit).map(toEntry);
  }

  /** Partitions that have entries waiting. */
  partitionsPending(): number[] {
    this.assertOpen();
    if (this.count === 0) return [];
    return this.stmt.partitions.all().map((r) => r.partition);
  }

  /** The log took `entry` at `offset` (its own partition): it leaves the outbox, its position is remembered. */
  markSent(entry: OutboxEntry, offset: number, now = Date.now()): void {
    this.assertOpen();
    this.db.transaction(() => {
      this.stmt.remove.run(entry.seq);
      this.stmt.insertSent.run(entry.id, entry.key, entry.partition, offset, entry.createdAt, now);
    })();
    this.count--;
    const n = (this.perKey.get(entry.key) ?? 1) - 1;
    if (n > 0) this.perKey.set(entry.key, n);
    else this.perKey.delete(entry.key);
    for (const l of this.listeners) l();
  }

  /** Where an outbox id stands, or undefined if this node never buffered it (or forgot it). */
  lookup(id: string): OutboxLookup | undefined {
    this.assertOpen();
    const p = this.stmt.byId.get(id);
    if (p !== undefined) return { state: 'buffered', entry: toEntry(p) };
    const s = this.stmt.sentById.get(id);
    if (s === undefined) return undefined;
    return {
      state: 'sent',
      id: s.id,
      key: s.key,
      partition: s.partition,
      offset: s.offset,
      createdAt: s.created_at,
      sentAt: s.sent_at,
    };
  }

  /** Forgets the positions of entries sent before `before` (wall-clock ms; local bookkeeping). */
  purgeSent(before: number): number {
    this.assertOpen();
    return this.stmt.purgeSent.run(before).changes;
  }

  stats(now = Date.now()): OutboxStats {
    if (this.closed || this.count === 0)
      return { records: this.closed ? 0 : this.count, oldestSeconds: 0, max: this.max };
    const oldest = this.stmt.oldest.get()?.created_at ?? now;
    return { records: this.count, oldestSeconds: Math.max(0, (now - oldest) / 1000), max: this.max };
  }

  /** Calls `fn` after every entry that leaves the outbox; returns the unsubscribe function. */
  onSent(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Resolves true once `key` has no entries waiting, false after `timeoutMs` (or as soon as `stop()` says to give
   * up, checked on every entry sent and every 250 ms).
   */
  async waitKeyClear(key: string, timeoutMs: number, stop: () => boolean = () => false): Promise<boolean> {
    if (!this.hasPending(key)) return true;
    const deadline = Date.now() + timeoutMs;
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (v: boolean) => {
        done = true;
        unsubscribe();
        clearTimeout(timer);
        resolve(v);
      };
      const check = () => {
        if (done) return;
        if (!this.hasPending(key)) finish(true);
        else if (Date.now() >= deadline || stop() || this.closed) finish(false);
      };
      const unsubscribe = this.onSent(check);
      const tick = () => {
        check();
        if (!done) timer = setTimeout(tick, Math.min(250, Math.max(1, deadline - Date.now())));
      };
      tick();
    });
  }

  /** Closes the file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed)
      throw new LagoonError('outbox_closed', 'The outbox is closed', { status: 503, retryable: true });
  }
}
