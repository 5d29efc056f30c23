/**
 * Burrow-style status of one replica-partition, evaluated over a sliding window of lag samples.
 * Pure: samples and `now` are passed in; no I/O, no clock.
 *
 * Rules, in the order they are applied (the first that matches wins):
 *  1. newest sample's applied offset below its log start offset → GAP
 *     (records the replica never applied were deleted by retention: it serves nothing from the
 *     partition until it is rebuilt from a peer's snapshot; applied == log start is not a gap)
 *  2. no samples                                  → WARN  "no samples"
 *  3. applied offset went backwards in the window → REWIND
 *  4. newest sample older than stopAfterMs        → STOP  (data stopped arriving)
 *  5. a single sample                             → OK if its lag is 0, else WARN "not enough samples"
 *     (one point shows neither progress nor trend; a lag with no history is worth a look, not an alarm)
 *  6. lag 0 at the newest sample                  → OK    (caught up, moving or not)
 *  7. applied offset unchanged while lag > 0:
 *       no progress and no commit for ≥ stopAfterMs, and not known alive → STOP
 *       unchanged for ≥ stopAfterMs but commits move / known alive        → STALL
 *       unchanged for ≥ stuckWarnMs while the end offset grows              → WARN (early)
 *       unchanged across the whole window but for less than stopAfterMs    → WARN
 *  8. offsets advance but lag grows across the window (nearly every step up, or a clear margin) → WARN
 *  9. otherwise (offsets advance, lag shrinking or roughly flat)          → OK
 */
import type { LagStatus } from '../lag/types.js';

export interface LagSample {
  /** When the sample was taken, ms. */
  at: number;
  /** Next offset the replica will apply. */
  appliedOffset: number;
  /** High watermark of the partition. */
  endOffset: number;
  /**
   * Log start offset of the partition (earliest offset still in the log), if known. An applied offset
   * below it means records this replica never applied were deleted → GAP.
   */
  logStartOffset?: number | undefined;
  /** ms of the last commit / apply progress seen from the replica, if known. */
  committedAt?: number | undefined;
  /** Whether the replica is known to be alive (e.g. its consumer group has live members), if known. */
  active?: boolean | undefined;
}

export interface LagEvaluation {
  status: LagStatus;
  reason: string;
}

export interface LagStatusOptions {
  /** Length of the sliding window, ms, measured back from the newest sample. Default 10 000. */
  windowMs?: number;
  /** No progress and no commit for this long while lag > 0 → STOP; also the max sample age. Default 5 000. */
  stopAfterMs?: number;
  /** Applied offset unchanged this long while the end offset grows → WARN. Default 1000. */
  stuckWarnMs?: number;
  /** A lag that grew by at least this many records (and by ≥ 50 %) over the window → WARN. Default 100. */
  warnGrowthRecords?: number;
}

export const DEFAULT_LAG_WINDOW_MS = 10_000;
export const DEFAULT_STOP_AFTER_MS = 5_000;
export const DEFAULT_WARN_GROWTH_RECORDS = 100;
export const DEFAULT_STUCK_WARN_MS = 1000;

/** Severity order: OK < WARN < STALL < STOP < REWIND < GAP. */
export const LAG_STATUS_ORDER: readonly LagStatus[] = ['OK', 'WARN', 'STALL', 'STOP', 'REWIND', 'GAP'];

export function statusRank(s: LagStatus): number {
  return LAG_STATUS_ORDER.indexOf(s);
}

/** The worst status of a list (OK for an empty one). */
export function worstStatus(list: Iterable<LagStatus>): LagStatus {
  let worst: LagStatus = 'OK';
  for (const s of list) if (statusRank(s) > statusRank(worst)) worst = s;
  return worst;
}

/**
 * GAP check on one sample: the reason when its applied offset (next offset to apply) is below the log
 * start offset, i.e. offsets applied … logStart − 1 were deleted before the replica applied them.
 */
export function gapOf(s: LagSample): string | undefined {
  const start = s.logStartOffset;
  if (start === undefined || !Number.isFinite(start) || !(s.appliedOffset < start)) return undefined;
  return `${deletedRange(s.appliedOffset, start)}; it serves nothing from this partition until it is rebuilt from a peer's snapshot`;
}

/** "offsets from–(logStart−1) were deleted by retention before this replica applied them" (one offset: singular). */
export function deletedRange(from: number, logStart: number): string {
  return logStart - 1 === from
    ? `offset ${from} was deleted by retention before this replica applied it`
    : `offsets ${from}–${logStart - 1} were deleted by retention before this replica applied them`;
}

/** Records the replica has not applied yet; never negative. */
export function sampleLag(s: LagSample): number {
  return Math.max(0, s.endOffset - s.appliedOffset);
}

/** Evaluate a window of samples (oldest first) for one replica-partition at time `now`. */
export function evaluateLag(
  samples: readonly LagSample[],
  now: number,
  options: LagStatusOptions = {},
): LagEvaluation {
  const windowMs = options.windowMs ?? DEFAULT_LAG_WINDOW_MS;
  const stopAfterMs = options.stopAfterMs ?? DEFAULT_STOP_AFTER_MS;
  const warnGrowth = options.warnGrowthRecords ?? DEFAULT_WARN_GROWTH_RECORDS;
  const stuckWarnMs = options.stuckWarnMs ?? DEFAULT_STUCK_WARN_MS;

  const newest = samples[samples.length - 1];
  // 1. GAP: the newest sample alone decides, whatever else the window shows.
  const gap = newest && gapOf(newest);
  if (gap) return { status: 'GAP', reason: gap };

  // 2. No samples.
  if (!newest) return { status: 'WARN', reason: 'no samples' };
  const w = samples.filter((s) => s.at >= newest.at - windowMs);
  const first = w[0]!;
  const lag = sampleLag(newest);

  // 3. REWIND: anywhere in the window.
  for (let i = 1; i < w.length; i++) {
    const a = w[i - 1]!;
    const b = w[i]!;
    if (b.appliedOffset < a.appliedOffset) {
      return {
        status: 'REWIND',
        reason: `applied offset went back ${a.appliedOffset} → ${b.appliedOffset} at ${ago(now, b.at)}`,
      };
    }
  }

  // 4. Data stopped arriving.
  const age = now - newest.at;
  if (age >= stopAfterMs) {
    return { status: 'STOP', reason: `no sample for ${secs(age)} (last lag ${lag} records)` };
  }

  // 5. A single sample.
  if (w.length < 2) {
    return lag === 0
      ? { status: 'OK', reason: `caught up at offset ${newest.appliedOffset}` }
      : { status: 'WARN', reason: `not enough samples (lag ${lag} records)` };
  }

  // 6. Caught up.
  if (lag === 0) return { status: 'OK', reason: `caught up at offset ${newest.appliedOffset}` };

  // 7. Applied offset stuck while lag > 0. `run` = first sample of the trailing run at the newest offset.
  let run = w.length - 1;
  while (run > 0 && w[run - 1]!.appliedOffset === newest.appliedOffset) run--;
  const runSample = w[run]!;
  const stuckSince = runSample.at; // lower bound on how long (latest possible time of the last move)
  const stuckFor = now - stuckSince;
  let lastCommit: number | undefined;
  for (let i = run; i < w.length; i++) {
    const c = w[i]!.committedAt;
    if (c !== undefined && Number.isFinite(c) && (lastCommit === undefined || c > lastCommit)) lastCommit = c;
  }
  // Last sign of progress: the commit time when known (it may predate the window), but never earlier
  // than an applied-offset move seen inside the window.
  const movedInWindow = run > 0;
  const lastProgress =
    lastCommit === undefined ? stuckSince : movedInWindow ? Math.max(lastCommit, stuckSince) : lastCommit;
  const idleFor = now - lastProgress;
  const knownAlive = newest.active === true;
  const endGrew = newest.endOffset - runSample.endOffset;
  const endNote = endGrew > 0 ? `, end +${endGrew}` : '';

  if (w.length - run >= 2) {
    if (idleFor >= stopAfterMs && !knownAlive) {
      return {
        status: 'STOP',
        reason: `no progress for ${secs(idleFor)}: applied stuck at ${newest.appliedOffset}, lag ${lag} records${endNote}`,
      };
    }
    if (stuckFor >= stopAfterMs) {
      const why = knownAlive && idleFor >= stopAfterMs ? 'replica alive' : 'commits continue';
      return {
        status: 'STALL',
        reason: `applied stuck at ${newest.appliedOffset} for ${secs(stuckFor)} (${why}), lag ${lag} records${endNote}`,
      };
    }
    // Stuck for a moment while new records keep arriving: warn early (a paused or wedged replica shows
    // within ~2 s), long before STALL/STOP can be told apart.
    if (stuckFor >= stuckWarnMs && endGrew > 0) {
      return {
        status: 'WARN',
        reason: `applied stuck at ${newest.appliedOffset} for ${secs(stuckFor)} while end grew +${endGrew}, lag ${lag} records`,
      };
    }
    if (!movedInWindow) {
      return {
        status: 'WARN',
        reason: `applied unchanged at ${newest.appliedOffset} for ${secs(stuckFor)}, lag ${lag} records${endNote}`,
      };
    }
  }

  // 8./9. Trend over the window while offsets advance.
  const first0 = sampleLag(first);
  const span = newest.at - first.at;
  const pairs = w.length - 1;
  let ups = 0;
  for (let i = 1; i < w.length; i++) if (sampleLag(w[i]!) > sampleLag(w[i - 1]!)) ups++;
  const growth = lag - first0;
  const steadyClimb = pairs >= 3 && growth > 0 && ups >= pairs - Math.floor(pairs / 4);
  const clearMargin = growth >= warnGrowth && growth >= first0 * 0.5;
  const trend =
    first0 === lag
      ? `lag steady at ${lag} records over ${secs(span)}`
      : `lag ${first0 < lag ? 'grew' : 'shrank'} ${first0} → ${lag} records over ${secs(span)}`;
  if (steadyClimb || clearMargin) return { status: 'WARN', reason: `falling behind: ${trend}` };
  return { status: 'OK', reason: `applying: ${trend}` };
}

export interface LagWindowOptions extends LagStatusOptions {
  /** Hard cap on samples kept, whatever their times. Default 1 000. */
  maxSamples?: number;
}

/** The sliding window of one replica-partition: push samples as they are taken, evaluate any time. */
export class LagWindow {
  private readonly samples: LagSample[] = [];
  private readonly windowMs: number;
  private readonly maxSamples: number;

  constructor(private readonly options: LagWindowOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_LAG_WINDOW_MS;
    this.maxSamples = Math.max(2, options.maxSamples ?? 1000);
  }

  /**
   * Add a sample. One older than the newest is dropped (returns false); one at the same time replaces
   * it. Samples older than windowMs before the newest are pruned — the newest always stays, so a
   * window whose data stopped arriving still evaluates to STOP.
   */
  push(sample: LagSample): boolean {
    const last = this.samples[this.samples.length - 1];
    if (last && sample.at < last.at) return false;
    if (last && sample.at === last.at) this.samples[this.samples.length - 1] = { ...sample };
    else this.samples.push({ ...sample });
    const cutoff = sample.at - this.windowMs;
    let drop = 0;
    while (drop < this.samples.length - 1 && this.samples[drop]!.at < cutoff) drop++;
    drop = Math.max(drop, this.samples.length - this.maxSamples);
    if (drop > 0) this.samples.splice(0, drop);
    return true;
  }

  evaluate(now: number): LagEvaluation {
    return evaluateLag(this.samples, now, this.options);
  }

  get size(): number {
    return this.samples.length;
  }

  get latest(): LagSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  /** Copies of the samples, oldest first. */
  snapshot(): LagSample[] {
    return this.samples.map((s) => ({ ...s }));
  }
}

/** Windows keyed by replica-partition (any string key, e.g. `lagKey(group, partition)`). */
export class LagWindows {
  private readonly windows = new Map<string, LagWindow>();

  constructor(private readonly options: LagWindowOptions = {}) {}

  push(key: string, sample: LagSample): boolean {
    let w = this.windows.get(key);
    if (!w) {
      w = new LagWindow(this.options);
      this.windows.set(key, w);
    }
    return w.push(sample);
  }

  get(key: string): LagWindow | undefined {
    return this.windows.get(key);
  }

  evaluate(key: string, now: number): LagEvaluation {
    return this.windows.get(key)?.evaluate(now) ?? evaluateLag([], now, this.options);
  }

  evaluateAll(now: number): Map<string, LagEvaluation> {
    const out = new Map<string, LagEvaluation>();
    for (const [k, w] of this.windows) out.set(k, w.evaluate(now));
    return out;
  }

  delete(key: string): boolean {
    return this.windows.delete(key);
  }

  keys(): string[] {
    return [...this.windows.keys()];
  }
}

export function lagKey(group: string, partition: number): string {
  return `${group}/${partition}`;
}

function secs(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
}

function ago(now: number, at: number): string {
  return `${secs(now - at)} ago`;
}
