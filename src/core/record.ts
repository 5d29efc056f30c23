import { validateKey } from './keys.js';
import { parseVersion } from './version.js';

/**
 * The Kafka record format. Record key = store key (UTF-8), value = JSON bytes of one of the bodies below.
 * Heartbeats have a null key. Bodies carry `v: 1` so the format can evolve; an unknown `v` decodes as invalid.
 */

/** Longest idempotency key and writer id accepted in a record (the API must enforce the same limits). */
export const MAX_IDEM_LENGTH = 256;
export const MAX_WID_LENGTH = 256;
export const MAX_NODE_LENGTH = 256;
/** Longest TTL: 100 years. Keeps `timestamp + ttlMs` a safe integer. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

/** Conditions and idempotency shared by puts and deletes. `ifMatch` is a version or `'*'` (must exist). */
interface WriteCommon {
  v: 1;
  ifMatch?: string;
  ifNoneMatch?: true;
  idem?: string;
  /** Writer id: which node/request produced the record, for tracing. */
  wid: string;
}

/** Set `key` to a JSON value, optionally expiring `ttlMs` after the record's log time. */
export interface PutOp extends WriteCommon {
  op: 'put';
  value: unknown;
  ttlMs?: number;
}

/** Delete `key` (a tombstone). */
export interface DelOp extends WriteCommon {
  op: 'del';
}

/** Per-partition heartbeat, so that idle partitions show no false time lag. Record key is null. */
export interface HeartbeatOp {
  v: 1;
  op: 'hb';
  node: string;
}

/** Every record body Lagoon writes to the topic. */
export type WriteOp = PutOp | DelOp | HeartbeatOp;

/** A record as the replica sees it: the body plus the store key, or why it could not be understood. */
export type DecodedRecord =
  | (PutOp & { key: string })
  | (DelOp & { key: string })
  | HeartbeatOp
  | { op: 'invalid'; reason: string; key: string | null };

/** Encodes a store key as the Kafka record key. */
export function encodeKey(key: string): Buffer {
  return Buffer.from(key, 'utf8');
}

/**
 * Encodes a record body as JSON bytes, with fields in a fixed order. Throws TypeError if the body would not
 * decode (so a bug in a producer fails loudly instead of writing a poison record).
 */
export function encodeRecord(op: WriteOp): Buffer {
  const checked = checkBody(op);
  if (typeof checked === 'string') throw new TypeError(`cannot encode record: ${checked}`);
  return Buffer.from(JSON.stringify(checked), 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a Kafka record. Never throws: anything malformed decodes to `{ op: 'invalid', reason }`, which the
 * replica applies as a deterministic rejection so that one poison record cannot stop it.
 */
export function decodeRecord(key: Buffer | null, value: Buffer | null): DecodedRecord {
  let keyText: string | null = null;
  let keyError: string | undefined;
  if (key !== null && key !== undefined) {
    try {
      keyText = utf8.decode(key);
    } catch {
      // Keep a readable (lossy, but deterministic) form for the writes table.
      keyText = Buffer.from(key).toString('utf8');
      keyError = 'record key is not valid UTF-8';
    }
  }
  const invalid = (reason: string): DecodedRecord => ({ op: 'invalid', reason, key: keyText });

  if (value === null || value === undefined) return invalid('record value is null');
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(value));
  } catch {
    return invalid('record value is not UTF-8 JSON');
  }
  const body = checkBody(parsed);
  if (typeof body === 'string') return invalid(body);
  if (body.op === 'hb') {
    if (keyText !== null) return invalid('heartbeat record must have a null key');
    return body;
  }
  if (keyError !== undefined) return invalid(keyError);
  if (keyText === null) return invalid('write record has a null key');
  const kv = validateKey(keyText);
  if (!kv.ok) return invalid(`invalid key: ${kv.reason}`);
  return { ...body, key: keyText };
}

/** Validates an untrusted body and returns a clean copy (known fields only, fixed order), or a reason. */
function checkBody(x: unknown): WriteOp | string {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'record value is not a JSON object';
  const o = x as Record<string, unknown>;
  if (o['v'] !== 1) return `unsupported record format version ${JSON.stringify(o['v']) ?? 'undefined'}`;
  const op = o['op'];
  if (op === 'hb') {
    const node = o['node'];
    if (!isBoundedString(node, MAX_NODE_LENGTH)) return 'heartbeat node must be a non-empty string';
    return { v: 1, op: 'hb', node };
  }
  if (op !== 'put' && op !== 'del') return `unknown op ${JSON.stringify(op) ?? 'undefined'}`;

  const wid = o['wid'];
  if (!isBoundedString(wid, MAX_WID_LENGTH)) return `wid must be a string of 1..${MAX_WID_LENGTH} characters`;
  const ifMatch = o['ifMatch'];
  if (ifMatch !== undefined && !(ifMatch === '*' || (typeof ifMatch === 'string' && parseVersion(ifMatch)))) {
    return 'ifMatch must be a version or "*"';
  }
  const ifNoneMatch = o['ifNoneMatch'];
  if (ifNoneMatch !== undefined && ifNoneMatch !== true) return 'ifNoneMatch must be true when present';
  if (ifMatch !== undefined && ifNoneMatch !== undefined) return 'ifMatch and ifNoneMatch are exclusive';
  const idem = o['idem'];
  if (idem !== undefined && !isBoundedString(idem, MAX_IDEM_LENGTH)) {
    return `idem must be a string of 1..${MAX_IDEM_LENGTH} characters`;
  }

  // Fixed field order, so equal bodies encode to equal bytes.
  const rest = {
    ...(ifMatch !== undefined ? { ifMatch: ifMatch as string } : {}),
    ...(ifNoneMatch !== undefined ? { ifNoneMatch: true as const } : {}),
    ...(idem !== undefined ? { idem: idem as string } : {}),
    wid,
  };
  if (op === 'del') {
    if (Object.hasOwn(o, 'value') || Object.hasOwn(o, 'ttlMs')) return 'del must not carry value or ttlMs';
    return { v: 1, op: 'del', ...rest };
  }
  if (!Object.hasOwn(o, 'value') || o['value'] === undefined) return 'put must carry a value';
  const value = o['value'];
  if (!isJsonValue(value)) return 'put value is not JSON';
  const ttlMs = o['ttlMs'];
  if (
    ttlMs !== undefined &&
    !(Number.isSafeInteger(ttlMs) && (ttlMs as number) > 0 && (ttlMs as number) <= MAX_TTL_MS)
  ) {
    return `ttlMs must be an integer in 1..${MAX_TTL_MS}`;
  }
  return { v: 1, op: 'put', value, ...(ttlMs !== undefined ? { ttlMs: ttlMs as number } : {}), ...rest };
}

function isBoundedString(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= max;
}

/** True if `x` survives a JSON round trip unchanged in meaning (what JSON.parse can produce). */
function isJsonValue(x: unknown, depth = 0): boolean {
  if (depth > 1000) return false;
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (Array.isArray(x)) return x.every((e) => isJsonValue(e, depth + 1));
  if (typeof x === 'object') {
    const proto = Object.getPrototypeOf(x);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(x as Record<string, unknown>).every((e) => isJsonValue(e, depth + 1));
  }
  return false;
}
