/**
 * When a peer's snapshot can rebuild this replica (pure). For every partition the snapshot must reach:
 * - the log's start offset: the log still holds everything after the snapshot's offsets, so the tail closes the
 *   store without a gap (a snapshot older than the retention cannot);
 * - this replica's own applied offset: installing never moves the replica back in time (a session read it
 *   answered, an outcome it reported, stays true).
 */
export interface SnapshotOffsets {
  partitions: ReadonlyArray<{ partition: number; appliedOffset: number }>;
}

/** undefined when usable; otherwise why not, naming the first partitions that fall short. */
export function snapshotUnusable(
  snapshot: SnapshotOffsets,
  partitions: number,
  local: ReadonlyMap<number, number>,
  logStart: ReadonlyMap<number, number>,
): string | undefined {
  const short: string[] = [];
  for (let p = 0; p < partitions; p++) {
    const at = snapshot.partitions.find((x) => x.partition === p)?.appliedOffset;
    if (at === undefined) {
      short.push(`partition ${p} missing`);
      continue;
    }
    const start = logStart.get(p) ?? 0;
    const own = local.get(p) ?? 0;
    if (at < start) short.push(`partition ${p} at ${at}, the log starts at ${start}`);
    else if (at < own) short.push(`partition ${p} at ${at}, this replica is at ${own}`);
  }
  if (short.length === 0) return undefined;
  return `${short.slice(0, 3).join('; ')}${short.length > 3 ? ` (+${short.length - 3} more)` : ''}`;
}
