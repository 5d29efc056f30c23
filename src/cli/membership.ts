import path from 'node:path';
import { LocalCluster } from '../cluster/local-cluster.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { REPLICA_GROUP_PREFIX } from '../lag/tracker.js';
import { kafkaClient } from '../log/kafka-client.js';
import type { CliIo } from './io.js';

/** The consumer group of node `id`'s replica (one group per replica; see src/node/node.ts). */
export function replicaGroupOf(id: string): string {
  return `${REPLICA_GROUP_PREFIX}${id}`;
}

/**
 * `lagoon node remove ID`: deletes a removed node's consumer group, so it no longer shows in lag tools. Refused
 * while the group has members (the node still runs): stop the node first.
 */
export async function nodeRemoveCommand(
  id: string | undefined,
  flags: { kafka?: string | undefined; 'data-dir'?: string | undefined },
  io: CliIo,
): Promise<number> {
  if (!id)
    throw new LagoonError('bad_argument', 'lagoon node remove needs the node id: lagoon node remove node-4');
  const dataDir = path.resolve(flags['data-dir'] ?? DEFAULTS.dataDir);
  const brokers =
    flags.kafka?.split(',') ??
    process.env.LAGOON_KAFKA_BROKERS?.split(',') ??
    (LocalCluster.exists(dataDir) ? LocalCluster.open({ dataDir }).bootstrap : undefined);
  if (!brokers) {
    throw new LagoonError(
      'bad_argument',
      'Where is Kafka? Give --kafka host:port,… (or run it next to `lagoon up`)',
    );
  }
  const admin = kafkaClient({ brokers, clientId: 'lagoon-cli' }).admin();
  await admin.connect();
  try {
    const group = replicaGroupOf(id);
    const { groups } = await admin.describeGroups([group]);
    const g = groups[0];
    if (!g || g.state === 'Dead') {
      io.err(`No consumer group ${group}: nothing to remove`);
      return 1;
    }
    if (g.members.length > 0) {
      throw new LagoonError(
        'node_active',
        `${id} is still running (${g.members.length} member(s) in ${group}, state ${g.state}): stop it first`,
      );
    }
    await admin.deleteGroups([group]);
    io.out(`Removed ${id}: consumer group ${group} deleted`);
    return 0;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
