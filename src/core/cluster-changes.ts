/** What the node saw of Kafka at one refresh, reduced to what its operator wants to hear about when it changes. */
export interface ClusterFacts {
  reachable: boolean;
  brokers: readonly number[];
  /** Per partition: why it takes no writes now, or undefined when it does. */
  gates: ReadonlyArray<string | undefined>;
}

export interface Change {
  event: string;
  fields: Record<string, unknown>;
}

/**
 * The state changes between two refreshes (pure): Kafka reachable or not, brokers lost or back, partitions whose
 * write gate closed or opened. The first observation (prev undefined) reports only what is wrong.
 */
export function clusterChanges(prev: ClusterFacts | undefined, next: ClusterFacts): Change[] {
  const out: Change[] = [];
  if (prev === undefined) {
    if (next.reachable) out.push({ event: 'kafka_reachable', fields: { brokers: [...next.brokers] } });
  } else if (prev.reachable !== next.reachable) {
    out.push(
      next.reachable
        ? { event: 'kafka_reachable', fields: { brokers: [...next.brokers] } }
        : { event: 'kafka_unreachable', fields: {} },
    );
  }
  // Broker membership is only known while Kafka answers: an unreachable round says nothing about single brokers.
  if (prev?.reachable && next.reachable) {
    const before = new Set(prev.brokers);
    const after = new Set(next.brokers);
    for (const b of before) if (!after.has(b)) out.push({ event: 'broker_lost', fields: { broker: b } });
    for (const b of after) if (!before.has(b)) out.push({ event: 'broker_back', fields: { broker: b } });
  }
  for (let p = 0; p < next.gates.length; p++) {
    const was = prev?.gates[p];
    const now = next.gates[p];
    if (now !== undefined && (prev === undefined || was === undefined)) {
      out.push({ event: 'write_gate_closed', fields: { partition: p, reason: now } });
    } else if (now === undefined && was !== undefined) {
      out.push({ event: 'write_gate_open', fields: { partition: p } });
    }
  }
  return out;
}
