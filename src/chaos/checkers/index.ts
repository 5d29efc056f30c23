/** The chaos suite's history checkers (SPEC §6): pure functions from a recorded History to verdicts. */
import type { CheckResult, History } from '../history.js';
import { availability } from './availability.js';
import type { CheckOptions } from './common.js';
import { convergence } from './convergence.js';
import { eventualAvailability } from './eventual-availability.js';
import { linearizable } from './linearizable.js';
import { monotonicReads } from './monotonic-reads.js';
import { noFailedValues } from './no-failed-values.js';
import { noLostWrites } from './no-lost-writes.js';
import { sessionReads } from './session-reads.js';

export { OUTSIDE } from './availability.js';
export type { CheckOptions } from './common.js';
export { MAX_ERRORS } from './common.js';
export { ALL_BROKERS_DOWN } from './eventual-availability.js';
export {
  availability,
  convergence,
  eventualAvailability,
  linearizable,
  monotonicReads,
  noFailedValues,
  noLostWrites,
  sessionReads,
};

/** Every checker by its result name, in report order. */
export const checkers: Record<string, (h: History, opts?: CheckOptions) => CheckResult> = {
  'no-lost-writes': noLostWrites,
  'no-failed-values': noFailedValues,
  convergence,
  'session-reads': sessionReads,
  'monotonic-reads': monotonicReads,
  linearizable,
  'eventual-availability': eventualAvailability,
  availability,
};

/** Runs every checker on a history. */
export function checkAll(h: History, opts: CheckOptions = {}): CheckResult[] {
  return Object.values(checkers).map((check) => check(h, opts));
}

/** The overall verdict: false if any checker failed, 'unknown' if any could not tell, else true. */
export function overallValid(results: readonly CheckResult[]): boolean | 'unknown' {
  if (results.some((r) => r.valid === false)) return false;
  return results.some((r) => r.valid === 'unknown') ? 'unknown' : true;
}
