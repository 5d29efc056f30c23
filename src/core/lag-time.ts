/**
 * Time lag of one partition, the way kafka-lag-exporter estimates it: keep a bounded table of
 * (end offset, time it was observed) points and interpolate the produce time of the oldest record a
 * replica has not applied yet. Pure: time is always passed in; no I/O.
 *
 * Model. An end-offset observation (E, t) says "records with offset < E had been produced by t".
 * Each table point keeps the FIRST time its end offset was seen (when records up to it had been
 * produced) and the LAST time it was still the end (nothing newer had been produced yet). The
 * records E_i .. E_{i+1}−1 were therefore produced inside (lastAt(E_i), firstAt(E_{i+1})], and the
 * record at offset x is placed where the end offset first reached x + 1, interpolated linearly on
 * that interval. Keeping the last sighting too is what stops an idle partition that suddenly gets a
 * write from showing the whole idle period as lag.
 *
 * Exact record timestamps (`observeRecord`, e.g. from batches this node applied) are preferred when
 * they cover the offset: another replica behind this one then gets its lag from real produce times.
 */

/** One end-offset point: `offset` was the end from `firstAt` (first sighting) through `lastAt`. */
export interface EndPoint {
  offset: number;
  firstAt: number;
  lastAt: number;
}

/** One record whose produce timestamp is known exactly. */
export interface RecordPoint {
  offset: number;
  timestamp: number;
}

export interface OffsetTimelineOptions {
  /** Cap for each table (end points, record points); at the cap every other interior point is dropped. */
  maxPoints?: number;
}

export const DEFAULT_MAX_TIMELINE_POINTS = 1000;

export class OffsetTimeline {
  private readonly ends: EndPoint[] = [];
  private readonly records: RecordPoint[] = [];
  private readonly maxPoints: number;

  constructor(options: OffsetTimelineOptions = {}) {
    this.maxPoints = Math.max(4, Math.floor(options.maxPoints ?? DEFAULT_MAX_TIMELINE_POINTS));
  }

  /**
   * The partition's end offset (high watermark) as read at time `at`. The table stays monotone: an
   * end offset below the newest one (a stale or reordered read) is ignored, an equal one only extends
   * that point's `lastAt`, and a time earlier than the newest point is clamped to it.
   * Returns whether a new point was added.
   */
  observeEnd(endOffset: number, at: number): boolean {
    if (!validOffset(endOffset) || !Number.isFinite(at)) return false;
    const last = this.ends[this.ends.length - 1];
    if (last) {
      if (endOffset < last.offset) return false;
      if (endOffset === last.offset) {
        last.lastAt = Math.max(last.lastAt, at);
        return false;
      }
      const t = Math.max(at, last.lastAt);
      this.ends.push({ offset: endOffset, firstAt: t, lastAt: t });
    } else {
      this.ends.push({ offset: endOffset, firstAt: at, lastAt: at });
    }
    if (this.ends.length > this.maxPoints) thin(this.ends);
    return true;
  }

  /** The exact produce timestamp (ms) of the record at `offset`. Out-of-order input is fine. */
  observeRecord(offset: number, timestamp: number): void {
    if (!validOffset(offset) || !Number.isFinite(timestamp)) return;
    const rs = this.records;
    const last = rs[rs.length - 1];
    if (!last || offset > last.offset) {
      rs.push({ offset, timestamp });
    } else {
      const i = lowerBound(rs, offset);
      const at = rs[i];
      if (at && at.offset === offset) at.timestamp = timestamp;
      else rs.splice(i, 0, { offset, timestamp });
    }
    if (rs.length > this.maxPoints) thin(rs);
  }

  /**
   * Estimated produce time (ms) of the record at `offset`, given that the end offset is `endOffset`
   * at `now` (used as a virtual newest point, never stored). Exact record timestamps win when they
   * cover `offset`; otherwise the end-offset table is interpolated.
   */
  produceTimeOf(offset: number, endOffset: number, now: number): number {
    const exact = this.fromRecords(offset);
    if (exact !== undefined) return exact;
    return this.fromEnds(offset, endOffset, now);
  }

  /**
   * now − produce time of the record at `appliedOffset` (the oldest unapplied one), in ms; 0 when
   * caught up (appliedOffset ≥ endOffset) — so an idle partition never shows lag — and never negative.
   */
  timeLagMs(appliedOffset: number, endOffset: number, now: number): number {
    if (!(appliedOffset < endOffset)) return 0;
    const lag = now - this.produceTimeOf(Math.max(0, appliedOffset), endOffset, now);
    return Number.isFinite(lag) ? Math.max(0, lag) : 0;
  }

  /** Forget everything (e.g. the topic was recreated and the end offset went backwards for good). */
  reset(): void {
    this.ends.length = 0;
    this.records.length = 0;
  }

  get endPointCount(): number {
    return this.ends.length;
  }

  get recordPointCount(): number {
    return this.records.length;
  }

  /** Copies of the tables, oldest first (for debugging and tests). */
  snapshot(): { ends: EndPoint[]; records: RecordPoint[] } {
    return { ends: this.ends.map((p) => ({ ...p })), records: this.records.map((r) => ({ ...r })) };
  }

  private fromRecords(offset: number): number | undefined {
    const rs = this.records;
    const i = lowerBound(rs, offset);
    const hi = rs[i];
    if (!hi) return undefined;
    if (hi.offset === offset) return hi.timestamp;
    const lo = rs[i - 1];
    if (!lo) return undefined; // below the oldest known record: not covered
    return lerp(lo.offset, lo.timestamp, hi.offset, hi.timestamp, offset);
  }

  private fromEnds(offset: number, endOffset: number, now: number): number {
    // The record at `offset` exists once the end offset reaches offset + 1.
    const target = offset + 1;
    const ends = this.ends;
    const i = lowerBound(ends, target);
    const hi = ends[i];
    if (hi) {
      if (hi.offset === target) return hi.firstAt;
      const lo = ends[i - 1];
      // Older than the table: the record was produced at or before the oldest point's first sighting,
      // so that time is used as is — the lag is then a conservative lower bound, never an overestimate.
      if (!lo) return hi.firstAt;
      return lerp(lo.offset, lo.lastAt, hi.offset, hi.firstAt, target);
    }
    // Newer than the table: it was produced after the newest point's last sighting and by `now`,
    // since endOffset > offset at `now`. No table at all: all we know is "by now" (lag 0, a lower bound).
    const last = ends[ends.length - 1];
    if (!last || endOffset <= last.offset) return now;
    const t0 = Math.min(last.lastAt, now);
    return lerp(last.offset, t0, endOffset, now, Math.min(target, endOffset));
  }
}

function validOffset(o: number): boolean {
  return Number.isFinite(o) && o >= 0;
}

/** Linear interpolation of the time at offset `x` between (x0, t0) and (x1, t1), x0 < x1. */
function lerp(x0: number, t0: number, x1: number, t1: number, x: number): number {
  if (x1 <= x0) return t1;
  return t0 + ((x - x0) / (x1 - x0)) * (t1 - t0);
}

/** First index whose offset is ≥ `offset` (array sorted by offset ascending). */
function lowerBound(points: ReadonlyArray<{ offset: number }>, offset: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Halve a table by dropping every other interior point; the oldest and newest points stay, so the
 * covered span never shrinks. Repeated halvings make old history sparser than recent history.
 */
function thin<T>(points: T[]): void {
  const n = points.length;
  if (n <= 2) return;
  let w = 1;
  for (let r = 2; r < n - 1; r += 2) points[w++] = points[r]!;
  points[w++] = points[n - 1]!;
  points.length = w;
}
