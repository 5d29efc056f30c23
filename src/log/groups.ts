import type { Admin } from 'kafkajs';

/** A consumer group's committed position on the topic, as Kafka's own tools see it. */
export interface GroupOffsets {
  group: string;
  /** Group state from DescribeGroups (Stable, Empty, PreparingRebalance, Dead, …). */
  state: string;
  members: number;
  /** Committed offset per partition; a partition with no commit yet counts as 0, never −1. */
  offsets: Map<number, number>;
}

/** Committed offsets of every group whose id starts with `prefix`, for `topic`. */
export async function groupOffsets(admin: Admin, topic: string, prefix: string): Promise<GroupOffsets[]> {
  const { groups } = await admin.listGroups();
  const ids = groups
    .map((g) => g.groupId)
    .filter((id) => id.startsWith(prefix))
    .sort();
  if (ids.length === 0) return [];
  const described = await admin.describeGroups(ids);
  const byId = new Map(described.groups.map((g) => [g.groupId, g]));
  return Promise.all(
    ids.map(async (group) => {
      const res = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const offsets = new Map<number, number>();
      for (const p of res[0]?.partitions ?? []) offsets.set(p.partition, Math.max(0, Number(p.offset)));
      const d = byId.get(group);
      return { group, state: d?.state ?? 'Unknown', members: d?.members.length ?? 0, offsets };
    }),
  );
}
