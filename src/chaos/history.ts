/**
 * The history a chaos run records (Jepsen-style): every client operation with its invocation and
 * completion, plus what the run observed after healing. Pure data: the load generator writes it,
 * the checkers (src/chaos/checkers/*) read it. Times are ms on one monotonic-ish clock of the
 * recording process (performance.timeOrigin + performance.now()).
 */

/** Read levels of SPEC §4. */
export type Consistency = 'eventual' | 'session' | 'bounded' | 'strong';

/**
 * How an operation ended:
 * - `ok`: it happened (a write acknowledged / applied; a read answered 200 or 404);
 * - `fail`: it definitely did not happen (a definite error: 4xx, or 503 with `definite: true`);
 * - `unknown`: it may or may not have happened (504 write_outcome_unknown, a timeout, a reset
 *   connection, a 202 pending conditional write never resolved).
 */
export type Outcome = 'ok' | 'fail' | 'unknown';

/** A write. `value` is unique per write in a run, so a read identifies the write it saw. */
export interface WriteOp {
  kind: 'write';
  id: number;
  /** Logical client (one session): reads and writes of one process are sequential. */
  process: number;
  /** Node id (or URL) the request went to. */
  node: string;
  key: string;
  /** The value written; null for a delete. */
  value: number | null;
  /** Conditional write: If-Match version, or '*'; If-None-Match: * is `ifNoneMatch: true`. */
  ifMatch?: string;
  ifNoneMatch?: boolean;
  invokeAt: number;
  /** Absent while in flight; an unknown outcome may have a completeAt (when the client gave up). */
  completeAt?: number;
  outcome: Outcome;
  /** HTTP status and problem code, when there was an answer. */
  status?: number;
  code?: string;
  /** `"<partition>-<offset>"` for an ok write (and a 412 carries the rejected record's version too). */
  version?: string;
  /** For an ok conditional write: applied (200) or rejected (412, which is `fail` for the value). */
  verdict?: 'applied' | 'rejected';
}

/** A single-key read. */
export interface ReadOp {
  kind: 'read';
  id: number;
  process: number;
  node: string;
  key: string;
  consistency: Consistency;
  /** The session token sent, decoded: partition → required next offset. */
  sessionIn?: Record<number, number>;
  /** The token received, decoded. */
  sessionOut?: Record<number, number>;
  /** The key's partition. */
  partition: number;
  invokeAt: number;
  completeAt?: number;
  outcome: Outcome;
  status?: number;
  code?: string;
  /** For an ok read: the value seen (null for 404) and its version (absent for 404). */
  value?: number | null;
  version?: string;
}

export type HistoryOp = WriteOp | ReadOp;

/** What one node reported after the run healed and settled. */
export interface NodeFinal {
  node: string;
  /** Per partition: applied offset and digest (GET /v1/digest). */
  digests: Array<{ partition: number; appliedOffset: number; digest: string }>;
  /** Per key the run touched: the current value and version (eventual read after settling), or null. */
  values: Record<string, { value: number | null; version: string } | null>;
  /** Per version of a write the run saw acknowledged: GET /v1/writes/{version} on this node. */
  writes: Record<string, { status: string; key: string | null }>;
  /** Per partition: the log's end offset as this node last saw it. */
  endOffsets: Record<number, number>;
}

/** A fault window: when a fault was injected and when it was healed. */
export interface FaultWindow {
  kind: string;
  target: string;
  startAt: number;
  endAt: number;
}

/** Everything a run recorded. */
export interface History {
  ops: HistoryOp[];
  faults: FaultWindow[];
  finals: NodeFinal[];
  /** Partition count of the topic (partition of a key = murmur2 as Lagoon's partitioner). */
  partitions: number;
  startAt: number;
  endAt: number;
}

/** A checker's verdict: `valid` plus counter-examples (at most a few, each self-explaining). */
export interface CheckResult {
  name: string;
  valid: boolean | 'unknown';
  /** Human-readable one-liners, with the op ids involved. */
  errors: string[];
  /** Counts and figures the checker computed (e.g. ops checked). */
  stats: Record<string, number>;
}
