import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { encodeKey, encodeRecord } from '../core/record.js';
import { type LogRecord, ReplicaStore } from '../store/replica-store.js';
import { median } from './report.js';

/** One apply-rate figure: Lagoon's replica store against raw better-sqlite3 on the same machine, same run. */
export interface ApplyRate {
  records: number;
  batch: number;
  /** Medians of A/B/A rounds, rows per second (wall clock). */
  oursPerSec: number;
  anchorPerSec: number;
  ratio: number;
  rounds: { ours: number[]; anchor: number[] };
}

/** Log records as the replica receives them: small JSON puts over a key space of `keys`. */
function makeRecords(n: number, keys: number): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = 0; i < n; i++) {
    const key = `key-${i % keys}`;
    out.push({
      offset: i,
      timestamp: 1_700_000_000_000 + i,
      key: encodeKey(key),
      value: encodeRecord({ v: 1, op: 'put', value: { i, pad: 'x'.repeat(64) }, wid: `bench-${i}` }),
    });
  }
  return out;
}

function timeIt(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** Lagoon: ReplicaStore.applyBatch (decode, decide, upsert, digest, outcome rows, offsets: one tx per batch). */
function runOurs(dir: string, records: LogRecord[], batch: number): number {
  const store = ReplicaStore.open(path.join(dir, `ours-${Math.random()}.db`), { partitions: 1 });
  try {
    return timeIt(() => {
      for (let i = 0; i < records.length; i += batch) store.applyBatch(0, records.slice(i, i + batch));
    });
  } finally {
    store.close();
  }
}

/**
 * The apply anchor (also the bench's apply_rate anchor): the least a replica must do — parse each record and upsert the row into the same kv table,
 * one transaction per batch, same journal and sync mode (WAL, synchronous=FULL).
 */
export function rawUpsertSeconds(dir: string, records: readonly LogRecord[], batch: number): number {
  const db = new Database(path.join(dir, `raw-${Math.random()}.db`));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE kv (
      key TEXT PRIMARY KEY, partition INT NOT NULL, value TEXT NOT NULL, version TEXT NOT NULL,
      updated_at INT NOT NULL, expires_at INT) STRICT, WITHOUT ROWID`);
    const upsert = db.prepare(
      `INSERT INTO kv (key, partition, value, version, updated_at, expires_at) VALUES (?, 0, ?, ?, ?, NULL)
       ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at`,
    );
    const tx = db.transaction((rs: LogRecord[]) => {
      for (const r of rs) {
        const body = JSON.parse(r.value!.toString('utf8')) as { value: unknown };
        upsert.run(r.key!.toString('utf8'), JSON.stringify(body.value), `0-${r.offset}`, r.timestamp);
      }
    });
    return timeIt(() => {
      for (let i = 0; i < records.length; i += batch) tx(records.slice(i, i + batch));
    });
  } finally {
    db.close();
  }
}

/** Measures apply rate A/B/A (ours, anchor, ours, anchor, ours) after a warm-up round of each; medians. */
export function measureApplyRate(opts: { records?: number; batch?: number; keys?: number } = {}): ApplyRate {
  const n = opts.records ?? 200_000;
  const batch = opts.batch ?? 500;
  const records = makeRecords(n, opts.keys ?? 20_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-apply-bench-'));
  try {
    const warm = records.slice(0, Math.min(n, 20_000));
    runOurs(dir, warm, batch);
    rawUpsertSeconds(dir, warm, batch);
    const ours: number[] = [];
    const anchor: number[] = [];
    for (let round = 0; round < 3; round++) {
      ours.push(Math.round(n / runOurs(dir, records, batch)));
      if (round < 2) anchor.push(Math.round(n / rawUpsertSeconds(dir, records, batch)));
    }
    anchor.push(Math.round(n / rawUpsertSeconds(dir, records, batch)));
    const o = median(ours)!;
    const a = median(anchor)!;
    return {
      records: n,
      batch,
      oursPerSec: o,
      anchorPerSec: a,
      ratio: Math.round((o / a) * 100) / 100,
      rounds: { ours, anchor },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
