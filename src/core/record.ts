import { createHash } from 'node:crypto';
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
/**
 * Deepest nesting of arrays/objects a value may have (the outermost container counts 1). Bounded so that
 * encoding, hashing and serving a value never recurse deeply enough to exhaust the stack.
 */
export const MAX_JSON_DEPTH = 1000;

/** Conditions and idempotency shared by puts and deletes. `ifMatch` is a version or `'*'` (must exist). */
interface WriteCommon {
  v: 1;
  ifMatch?: string;
  ifNoneMatch?: true;
  idem?: string;
  /**
   * Write id, unique per write across node restarts (the API makes it node id + boot id + sequence). Two records
   * with the same wid on a partition are copies of one write (a producer retry appended twice); the replica
   * applies the later copy as a duplicate of the first.
   */
  wid: string;
  /**
   * Deadline (epoch ms) of a strict write: the record counts only if Kafka appended it by then (its log append
   * time ≤ dl); every replica drops a record that landed later (`deadline_passed`). So a write answered 504
   * at its deadline can never apply afterwards. Buffered writes carry none: they are meant to land later.
   */
  dl?: number;
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

/** One op of an atomic batch, inside the part record of its key's partition. `i`: its index in the batch. */
export interface TxItem {
  i: number;
  op: 'put' | 'del';
  key: string;
  value?: unknown;
  ttlMs?: number;
  ifMatch?: string;
  ifNoneMatch?: true;
}

/**
 * One partition's part of an atomic batch (POST /v1/batch). A batch is written as one Kafka transaction holding
 * one part record per partition it touches; the record key is the key of the part's first item. `parts` lists
 * every partition of the batch (ascending) and `n` its op count, so a replica knows when it holds all of it: it
 * applies a batch only once every part is in hand, all of it or none (src/core/tx-sequencer.ts).
 */
export interface TxOp {
  v: 1;
  op: 'tx';
  /** Batch id, unique across node restarts (node id + boot id + sequence). */
  tx: string;
  parts: number[];
  n: number;
  items: TxItem[];
  /** As for single writes: the batch counts only if every part was appended by then. */
  dl?: number;
}

/** Most ops one batch record may describe (the API's configurable limit stays below it). */
export const MAX_TX_OPS = 10_000;

/** Every record body Lagoon writes to the topic. */
export type WriteOp = PutOp | DelOp | HeartbeatOp | TxOp;

/** A record as the replica sees it: the body plus the store key, or why it could not be understood. */
export type DecodedRecord =
  | (PutOp & { key: string })
  | (DelOp & { key: string })
  | (TxOp & { key: string })
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
  if (body.op === 'tx' && body.items[0]!.key !== keyText) {
    return invalid("a batch part's record key must be its first item's key");
  }
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
  if (op === 'tx') return checkTx(o);
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
  const dl = o['dl'];
  if (dl !== undefined && !(Number.isSafeInteger(dl) && (dl as number) > 0)) {
    return 'dl must be a positive integer (epoch ms)';
  }

  // Fixed field order, so equal bodies encode to equal bytes.
  const rest = {
    ...(ifMatch !== undefined ? { ifMatch: ifMatch as string } : {}),
    ...(ifNoneMatch !== undefined ? { ifNoneMatch: true as const } : {}),
    ...(idem !== undefined ? { idem: idem as string } : {}),
    wid,
    ...(dl !== undefined ? { dl: dl as number } : {}),
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

/** Validates a batch part record (see TxOp); a clean copy with fields in a fixed order, or a reason. */
function checkTx(o: Record<string, unknown>): TxOp | string {
  const tx = o['tx'];
  if (!isBoundedString(tx, MAX_WID_LENGTH)) return `tx must be a string of 1..${MAX_WID_LENGTH} characters`;
  const parts = o['parts'];
  if (
    !Array.isArray(parts) ||
    parts.length === 0 ||
    !parts.every((p, i) => Number.isSafeInteger(p) && p >= 0 && (i === 0 || p > parts[i - 1]))
  ) {
    return 'parts must be a non-empty ascending list of partitions';
  }
  const n = o['n'];
  if (!(Number.isSafeInteger(n) && (n as number) >= 1 && (n as number) <= MAX_TX_OPS)) {
    return `n must be an integer in 1..${MAX_TX_OPS}`;
  }
  const items = o['items'];
  if (!Array.isArray(items) || items.length === 0 || items.length > (n as number)) {
    return 'items must be a non-empty list of at most n ops';
  }
  const clean: TxItem[] = [];
  for (const raw of items) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'a batch item is not an object';
    const it = raw as Record<string, unknown>;
    const i = it['i'];
    if (!(Number.isSafeInteger(i) && (i as number) >= 0 && (i as number) < (n as number))) {
      return 'a batch item index is out of range';
    }
    if (clean.length > 0 && (i as number) <= clean[clean.length - 1]!.i)
      return 'batch item indexes must ascend';
    const key = it['key'];
    if (typeof key !== 'string' || !validateKey(key).ok) return 'a batch item has an invalid key';
    const ifMatch = it['ifMatch'];
    if (
      ifMatch !== undefined &&
      !(ifMatch === '*' || (typeof ifMatch === 'string' && parseVersion(ifMatch)))
    ) {
      return 'ifMatch must be a version or "*"';
    }
    const ifNoneMatch = it['ifNoneMatch'];
    if (ifNoneMatch !== undefined && ifNoneMatch !== true) return 'ifNoneMatch must be true when present';
    if (ifMatch !== undefined && ifNoneMatch !== undefined) return 'ifMatch and ifNoneMatch are exclusive';
    const cond = {
      ...(ifMatch !== undefined ? { ifMatch: ifMatch as string } : {}),
      ...(ifNoneMatch !== undefined ? { ifNoneMatch: true as const } : {}),
    };
    if (it['op'] === 'del') {
      if (Object.hasOwn(it, 'value') || Object.hasOwn(it, 'ttlMs'))
        return 'del must not carry value or ttlMs';
      clean.push({ i: i as number, op: 'del', key, ...cond });
    } else if (it['op'] === 'put') {
      if (!Object.hasOwn(it, 'value') || !isJsonValue(it['value'])) return 'put must carry a JSON value';
      const ttlMs = it['ttlMs'];
      if (
        ttlMs !== undefined &&
        !(Number.isSafeInteger(ttlMs) && (ttlMs as number) > 0 && (ttlMs as number) <= MAX_TTL_MS)
      ) {
        return `ttlMs must be an integer in 1..${MAX_TTL_MS}`;
      }
      clean.push({
        i: i as number,
        op: 'put',
        key,
        value: it['value'],
        ...(ttlMs !== undefined ? { ttlMs: ttlMs as number } : {}),
        ...cond,
      });
    } else return `unknown batch item op ${JSON.stringify(it['op']) ?? 'undefined'}`;
  }
  const dl = o['dl'];
  if (dl !== undefined && !(Number.isSafeInteger(dl) && (dl as number) > 0)) {
    return 'dl must be a positive integer (epoch ms)';
  }
  return {
    v: 1,
    op: 'tx',
    tx,
    parts: [...(parts as number[])],
    n: n as number,
    items: clean,
    ...(dl !== undefined ? { dl: dl as number } : {}),
  };
}

function isBoundedString(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= max;
}

/**
 * True if `x` survives a JSON round trip unchanged in meaning (what JSON.parse can produce), nested at most
 * MAX_JSON_DEPTH containers deep. `depth` is the number of containers enclosing `x`.
 */
function isJsonValue(x: unknown, depth = 0): boolean {
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(x)) return x.every((e) => isJsonValue(e, depth + 1));
  if (typeof x === 'object') {
    const proto = Object.getPrototypeOf(x);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(x as Record<string, unknown>).every((e) => isJsonValue(e, depth + 1));
  }
  return false;
}

/** Why a request body is not a value Lagoon can store exactly; `code` is the API's stable error code. */
export interface JsonValueError {
  code: 'invalid_json' | 'invalid_value' | 'unsafe_integer';
  reason: string;
}

/**
 * Parses a request body as a JSON value that Lagoon can store and give back exactly. JSON.parse, because it
 * creates `__proto__` and `constructor` members as own data properties (they are stored as data, never touch
 * prototypes). Refused, with a reason: text that is not JSON; numbers that overflow a double (`1e400`: JSON
 * has no Infinity); integer literals beyond ±(2^53−1), which a double cannot hold exactly (a decimal or exponent
 * literal is a double by its own spelling and is kept as one); nesting deeper than MAX_JSON_DEPTH.
 */
export function parseJsonValue(
  text: string,
): { ok: true; value: unknown } | { ok: false; error: JsonValueError } {
  const lexical = scanJson(text);
  if (lexical !== undefined) return { ok: false, error: lexical };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: { code: 'invalid_json', reason: 'The body is not valid JSON' } };
  }
  // Non-finite numbers are caught here rather than by the scanner: only the parser knows when a literal overflows.
  if (!isJsonValue(value)) {
    return {
      ok: false,
      error: {
        code: 'invalid_value',
        reason: 'A number is too large for JSON to carry (it overflows a double)',
      },
    };
  }
  return { ok: true, value };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/**
 * One linear pass over the text outside strings: nesting depth and integer literals. Malformed text is left to
 * JSON.parse (it answers invalid_json); this only finds what JSON.parse would accept but lose.
 */
function scanJson(text: string): JsonValueError | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string, honouring backslash escapes.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) {
        return { code: 'invalid_value', reason: `The value is nested deeper than ${MAX_JSON_DEPTH} levels` };
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(text);
      if (m === null) continue;
      const lit = m[0];
      if (!/[.eE]/.test(lit)) {
        const n = BigInt(lit);
        if (n > MAX_SAFE || n < -MAX_SAFE) {
          return {
            code: 'unsafe_integer',
            reason: `The integer ${lit.length > 40 ? `${lit.slice(0, 40)}…` : lit} is beyond ±(2^53−1) and cannot be kept exactly; send it as a string`,
          };
        }
      }
      i += lit.length - 1;
    }
  }
  return undefined;
}

/**
 * Canonical JSON text of a value: object members sorted by key (UTF-16 order), no whitespace. Two JSON texts
 * that mean the same value have the same canonical form. Built as a string, never as an object, so that a
 * `__proto__` member stays data.
 */
export function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x !== null && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

/** The parts of a write request that its fingerprint covers. */
export interface FingerprintedRequest {
  op: 'put' | 'del';
  key: string;
  value?: unknown;
  ifMatch?: string | undefined;
  ifNoneMatch?: true | undefined;
  ttlMs?: number | undefined;
}

/**
 * Fingerprint of a write request for idempotency (hex sha256 over op, key, canonical value, conditions, TTL).
 * One function serves the API (for the request it received) and the replica (for the record it applies), so
 * they agree: a record carries every fingerprinted field, and the fingerprint is derived from them.
 */
export function requestFingerprint(r: FingerprintedRequest): string {
  const parts = [
    r.op,
    r.key,
    r.op === 'put' ? canonicalJson(r.value) : null,
    r.ifMatch ?? null,
    r.ifNoneMatch === true,
    r.op === 'put' ? (r.ttlMs ?? null) : null,
  ];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
