import { LagoonError } from '../errors.js';

/** A whole-number flag within [min, max], or `dflt` when absent; a readable error otherwise. */
export function intFlag(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new LagoonError(
      'bad_argument',
      `--${name} must be a whole number from ${min} to ${max}, got '${v}'`,
    );
  }
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag: `7d`, `12h`, `30m`, `45s`, `500ms`, or plain milliseconds; undefined when absent. */
export function durationFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v.trim());
  const ms = m ? Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new LagoonError(
      'bad_argument',
      `--${name} must be a duration such as 7d, 12h, 30m, 45s or 500ms (plain numbers are ms), got '${v}'`,
    );
  }
  return ms;
}
