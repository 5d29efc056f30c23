/**
 * A version is the log position of the write that produced it: `"<partition>-<offset>"`, e.g. `"3-1042"`.
 * Versions are totally ordered per key because one key lives in one partition.
 */

/** Largest Kafka partition id (partitions are int32). */
const MAX_PARTITION = 2 ** 31 - 1;
const VERSION_RE = /^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)$/;

/** A parsed version. Offsets are plain numbers: Kafka offsets stay far below 2^53. */
export interface LogPosition {
  partition: number;
  offset: number;
}

/** Formats a log position as a version string. Throws RangeError on a negative or non-integer input. */
export function formatVersion(partition: number, offset: number): string {
  if (!Number.isInteger(partition) || partition < 0 || partition > MAX_PARTITION) {
    throw new RangeError(`invalid partition ${partition}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid offset ${offset}`);
  return `${partition}-${offset}`;
}

/**
 * Parses a version string strictly: decimal non-negative integers without sign, leading zeros or spaces.
 * Returns undefined for anything else, including offsets too large to be represented exactly (>= 2^53).
 */
export function parseVersion(s: string): LogPosition | undefined {
  if (typeof s !== 'string' || s.length > 40) return undefined;
  const m = VERSION_RE.exec(s);
  if (!m) return undefined;
  const [, p, o] = m as unknown as [string, string, string];
  // Compare as BigInt so that a huge offset is rejected rather than silently rounded.
  if (BigInt(p) > BigInt(MAX_PARTITION)) return undefined;
  if (BigInt(o) > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { partition: Number(p), offset: Number(o) };
}

/** The strong ETag for a version: the version in double quotes. */
export function etagOf(version: string): string {
  return `"${version}"`;
}

/** A header value without the optional whitespace HTTP allows around it: spaces and tabs only (RFC 9110 §5.5). */
export function trimHeaderValue(v: string): string {
  return v.replace(/^[ \t]+|[ \t]+$/g, '');
}

/**
 * Parses an `If-Match` header value into what a write record carries: `'*'` (any current version) or a
 * version string. Returns undefined when the header cannot be honoured: weak validators (`W/"…"`, which
 * If-Match must not match per RFC 9110), lists of several tags, or anything that is not a Lagoon version.
 * An unquoted version is accepted for convenience.
 */
export function parseIfMatch(header: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  // Only the whitespace HTTP allows around a field value (spaces, tabs): `*\u00a0` is not `*`.
  const h = trimHeaderValue(header);
  if (h === '*') return '*';
  if (h.startsWith('W/') || h.startsWith('w/')) return undefined;
  let inner = h;
  if (h.startsWith('"')) {
    if (h.length < 2 || !h.endsWith('"')) return undefined;
    inner = h.slice(1, -1);
  }
  return parseVersion(inner) === undefined ? undefined : inner;
}
