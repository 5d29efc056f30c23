import path from 'node:path';
import { nodeEnv, parseNodeConfig } from '../config.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { LagoonNode } from '../node/node.js';
import { durationFlag } from './args.js';
import type { CliIo } from './io.js';

export interface NodeFlags {
  id?: string | undefined;
  port?: string | undefined;
  kafka?: string | undefined;
  db?: string | undefined;
  role?: string | undefined;
  topic?: string | undefined;
  partitions?: string | undefined;
  'data-dir'?: string | undefined;
  peers?: string | undefined;
  'events-file'?: string | undefined;
  retention?: string | undefined;
  bootstrap?: boolean | undefined;
}

/** Builds a node's config from flags over LAGOON_* env over defaults. */
export function nodeConfigFrom(flags: NodeFlags, env: NodeJS.ProcessEnv) {
  const e = nodeEnv(env);
  const id = flags.id;
  const brokers = flags.kafka ?? (e.brokers as string | undefined);
  if (!brokers) {
    throw new LagoonError(
      'bad_argument',
      'lagoon node needs Kafka: --kafka host:port,... or LAGOON_KAFKA_BROKERS (or use `lagoon up`, which starts a local cluster).',
    );
  }
  const sasl =
    e.saslMechanism !== undefined
      ? { mechanism: e.saslMechanism, username: e.saslUsername ?? '', password: e.saslPassword ?? '' }
      : undefined;
  return parseNodeConfig({
    ...Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)),
    id,
    port: flags.port ?? DEFAULTS.apiPort,
    role: flags.role,
    db: flags.db ?? path.join(flags['data-dir'] ?? DEFAULTS.dataDir, 'nodes', id ?? 'node', 'lagoon.db'),
    topic: flags.topic ?? e.topic,
    partitions: flags.partitions ?? e.partitions,
    kafka: { brokers, ssl: e.ssl, ...(sasl ? { sasl } : {}) },
    peers: flags.peers ? flags.peers.split(',').filter(Boolean) : [],
    eventsFile: flags['events-file'],
    ...(flags.retention !== undefined ? { retentionMs: durationFlag('retention', flags.retention) } : {}),
    bootstrap: flags.bootstrap ?? false,
  });
}

/** `lagoon node`: one node in the foreground until SIGINT/SIGTERM. */
export async function nodeCommand(flags: NodeFlags, _io: CliIo): Promise<number> {
  if (!flags.id) throw new LagoonError('bad_argument', 'lagoon node needs --id ID');
  const config = nodeConfigFrom(flags, process.env);
  const node = await LagoonNode.start(config);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    // Started by `lagoon up`: leave with the parent, even if it was SIGKILLed.
    const owner = Number(process.env.LAGOON_OWNER_PID ?? 0);
    if (owner > 0) {
      const t = setInterval(() => {
        try {
          process.kill(owner, 0);
        } catch {
          clearInterval(t);
          resolve('owner_gone');
        }
      }, 1000);
      t.unref();
    }
  });
  node.log.info({ component: 'node', event: 'stop_requested', by: signal }, 'stop requested');
  // Bounded: with the brokers gone, a Kafka client's disconnect can wait on dead sockets; the store
  // is consistent at every commit, so leaving after the bound loses no acknowledged write.
  const forced = setTimeout(() => {
    node.log.warn(
      { component: 'node', event: 'shutdown_forced', afterMs: config.shutdownTimeoutMs },
      'shutdown forced',
    );
    process.exit(0);
  }, config.shutdownTimeoutMs);
  forced.unref();
  await node.close();
  clearTimeout(forced);
  return 0;
}
