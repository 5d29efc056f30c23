/** Largest store key, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

/** Result of a validation: ok, or why not (a sentence fit for an error message). */
export type Validation = { ok: true } | { ok: false; reason: string };

/**
 * Checks that `key` can be a store key: 1..1024 bytes of UTF-8, no C0/C1 control characters (U+0000–U+001F,
 * U+007F–U+009F) and no lone surrogates (they have no UTF-8 encoding, so they could not round-trip through Kafka).
 */
export function validateKey(key: string): Validation {
  if (typeof key !== 'string') return { ok: false, reason: 'key must be a string' };
  if (key.length === 0) return { ok: false, reason: 'key must not be empty' };
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) {
      return { ok: false, reason: `key contains control character U+${hex4(c)} at index ${i}` };
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = key.charCodeAt(i + 1); // NaN past the end
      if (!(next >= 0xdc00 && next <= 0xdfff)) {
        return { ok: false, reason: `key contains a lone surrogate U+${hex4(c)} at index ${i}` };
      }
      i++; // skip the low half of a valid pair
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return { ok: false, reason: `key contains a lone surrogate U+${hex4(c)} at index ${i}` };
    }
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    return { ok: false, reason: `key is ${bytes} bytes of UTF-8, the maximum is ${MAX_KEY_BYTES}` };
  }
  return { ok: true };
}

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, '0');
}
