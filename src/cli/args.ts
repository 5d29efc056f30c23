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
