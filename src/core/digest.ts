import * as crypto from 'node:crypto';

/**
 * Per-partition state digest: an additive multiset hash. The digest is the sum, mod 2^128, of a 128-bit hash
 * of every stored entry, so it is updated in O(1) per write (subtract the old entry, add the new one) and does
 * not depend on the order in which different keys were applied. Rendered as 32 lowercase hex characters.
 */

const MOD = 1n << 128n;
const MASK = MOD - 1n;

/** Digest of an empty partition. */
export const EMPTY_DIGEST = '0'.repeat(32);

/** The fields of an entry that the digest covers. */
export interface DigestedEntry {
  key: string;
  version: string;
  value: string;
  expiresAt: number | null;
}

/**
 * First 16 bytes of sha256(key \0 version \0 value \0 expiresAt) as a BigInt; expiresAt null hashes as "".
 * NUL cannot occur inside keys, versions or canonical JSON text, so the encoding is unambiguous.
 */
export function entryHash(e: DigestedEntry): bigint {
  const h = sha256(`${e.key}\0${e.version}\0${e.value}\0${e.expiresAt === null ? '' : String(e.expiresAt)}`);
  return (h.readBigUInt64BE(0) << 64n) | h.readBigUInt64BE(8);
}

// crypto.hash (Node >= 20.12) is a one-shot digest, about 1.5x faster than createHash on the apply hot path.
const sha256: (s: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha256', s, 'buffer')
    : (s) => crypto.createHash('sha256').update(s, 'utf8').digest();

/** Parses a digest string; throws RangeError if it is not 32 hex characters. */
export function digestToBigInt(d: string): bigint {
  if (!/^[0-9a-f]{32}$/.test(d)) throw new RangeError(`invalid digest ${JSON.stringify(d)}`);
  return BigInt(`0x${d}`);
}

/** Renders a 128-bit value (reduced mod 2^128) as a digest string. */
export function bigIntToDigest(n: bigint): string {
  return (((n % MOD) + MOD) & MASK).toString(16).padStart(32, '0');
}

/** Adds an entry hash to a digest. */
export function addHash(d: string, h: bigint): string {
  return bigIntToDigest(digestToBigInt(d) + h);
}

/** Removes an entry hash from a digest. */
export function subHash(d: string, h: bigint): string {
  return bigIntToDigest(digestToBigInt(d) - h);
}

/** Digest of a set of entries, computed from scratch (for checks and tests). */
export function digestOf(entries: Iterable<DigestedEntry>): string {
  let sum = 0n;
  for (const e of entries) sum = (sum + entryHash(e)) & MASK;
  return bigIntToDigest(sum);
}
