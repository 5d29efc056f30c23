/**
 * Readiness, decided from facts the node gathers (pure: no I/O, no clock). A node is ready when it can serve
 * reads at every level and take writes: not stopping, its replica has not refused its log, its topic is safe,
 * its replica has joined its group and has caught up once with the log's end as it was after that join.
 */

export interface ReadinessFacts {
  stopping: boolean;
  /** `api` nodes have no replica: they are ready once their topic is safe. */
  hasReplica: boolean;
  replicaState: string;
  replicaProblem: { code: string; message: string } | undefined;
  replicaLastError: string | undefined;
  topicProblem: string | undefined;
  /** Set while the replica installs a peer's snapshot. */
  bootstrapping?: string | undefined;
  /** Set while partitions have a gap (records deleted before the replica applied them). */
  gaps?: string | undefined;
  /** undefined once caught up; otherwise what is still behind. */
  catchingUp: string | undefined;
}

export type Readiness =
  | { ready: true }
  | { ready: false; code: string; reason: string; retryable: boolean; details?: Record<string, unknown> };

export function readiness(f: ReadinessFacts): Readiness {
  if (f.stopping)
    return { ready: false, code: 'node_stopping', reason: 'The node is shutting down', retryable: true };
  // The replica's refusal comes first: it is permanent (an operator must act), while a topic problem may clear by
  // itself; a recreated topic usually causes both, and the answer must not depend on which check ran first.
  if (f.replicaProblem) {
    return {
      ready: false,
      code: 'replica_diverged',
      reason: f.replicaProblem.message,
      retryable: false,
      details: { reason: f.replicaProblem.code },
    };
  }
  if (f.topicProblem !== undefined) {
    return {
      ready: false,
      code: 'topic_unsafe',
      reason: `Takes no writes: ${f.topicProblem}`,
      retryable: true,
    };
  }
  if (!f.hasReplica) return { ready: true };
  if (f.bootstrapping !== undefined) {
    return {
      ready: false,
      code: 'replica_bootstrapping',
      reason: `The replica is being rebuilt: ${f.bootstrapping}`,
      retryable: true,
    };
  }
  if (f.gaps !== undefined) {
    return {
      ready: false,
      code: 'replica_gap',
      reason: `The replica serves nothing from partitions whose records were deleted by retention before it applied them (GAP): ${f.gaps}`,
      retryable: true,
    };
  }
  if (f.replicaState !== 'running') {
    return {
      ready: false,
      code: 'not_ready',
      reason: `Replica is ${f.replicaState}${f.replicaLastError ? `: ${f.replicaLastError}` : ''}`,
      retryable: true,
    };
  }
  if (f.catchingUp !== undefined) {
    return {
      ready: false,
      code: 'not_ready',
      reason: `Replica is catching up: ${f.catchingUp}`,
      retryable: true,
    };
  }
  return { ready: true };
}

/** One partition's end as the node last saw it: the offset and when the request that read it was sent. */
export interface EndView {
  partition: number;
  endOffset: number;
  observedAt: number;
}

/**
 * The catch-up target of one join: per partition, the first end offset read after the replica joined its group
 * (`joinedAt`). Later reads do not move it: under a steady write load the log's end always runs a few records
 * ahead of what the replica has applied, so "applied has reached the latest end" may never be true at any one
 * moment, while "applied has reached the end as it was when the replica joined" is reached once it has
 * replayed what it missed. A new join starts a new target.
 */
export interface CatchUpTarget {
  joinedAt: number;
  ends: ReadonlyMap<number, number>;
}

/** The target after a refresh of the ends: kept as it is, completed with partitions seen for the first time. */
export function latchTarget(
  prev: CatchUpTarget | undefined,
  ends: ReadonlyArray<EndView | undefined>,
  joinedAt: number,
): CatchUpTarget {
  const kept = prev !== undefined && prev.joinedAt === joinedAt ? prev.ends : new Map<number, number>();
  if (joinedAt <= 0) return { joinedAt, ends: kept };
  let next: Map<number, number> | undefined;
  for (const e of ends) {
    if (!e || e.observedAt < joinedAt || kept.has(e.partition) || next?.has(e.partition)) continue;
    next ??= new Map(kept);
    next.set(e.partition, e.endOffset);
  }
  return next === undefined && prev?.joinedAt === joinedAt ? prev : { joinedAt, ends: next ?? kept };
}

/**
 * What keeps a replica from being caught up with `target`: every partition must have an end offset read after
 * the join, and the replica's applied offset must have reached it. undefined = caught up.
 */
export function catchUpGap(
  partitions: number,
  target: CatchUpTarget,
  applied: ReadonlyMap<number, number>,
): string | undefined {
  if (target.joinedAt <= 0) return 'has not joined its consumer group yet';
  const behind: string[] = [];
  let unknown = 0;
  for (let p = 0; p < partitions; p++) {
    const end = target.ends.get(p);
    if (end === undefined) {
      unknown++;
      continue;
    }
    const at = applied.get(p) ?? 0;
    if (at < end) behind.push(`partition ${p} at ${at} of ${end}`);
  }
  if (unknown > 0) return `the log's end of ${unknown} partition(s) is not known yet`;
  if (behind.length > 0) {
    const shown = behind.slice(0, 3).join(', ');
    return `${shown}${behind.length > 3 ? ` (+${behind.length - 3} more)` : ''}`;
  }
  return undefined;
}
