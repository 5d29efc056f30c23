import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { LocalCluster } from '../cluster/local-cluster.js';
import { parseApiTokens } from '../core/api-tokens.js';
import { EVENTS_FILE } from '../core/events.js';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ensureTopic } from '../log/topic.js';
import { spawnNode, waitNodeReady } from '../node/spawn.js';
import { durationFlag, intFlag } from './args.js';
import type { CliIo } from './io.js';

export interface UpFlags {
  brokers?: string | undefined;
  nodes?: string | undefined;
  partitions?: string | undefined;
  'data-dir'?: string | undefined;
  kafka?: string | undefined;
  port?: string | undefined;
  topic?: string | undefined;
  'kafka-port'?: string | undefined;
  retention?: string | undefined;
}

/**
 * `lagoon up` (= `npm start`): Kafka (local cluster unless --kafka), the topic, and N nodes, each its own
 * OS process on ports 8081…; in the foreground until Ctrl-C / SIGTERM, then everything stops in order.
 */
export async function upCommand(flags: UpFlags, io: CliIo): Promise<number> {
  const dataDir = path.resolve(flags['data-dir'] ?? DEFAULTS.dataDir);
  const nodes = intFlag('nodes', flags.nodes, DEFAULTS.nodes, 1, 16);
  const partitions = intFlag('partitions', flags.partitions, DEFAULTS.partitions, 1, 1000);
  const basePort = intFlag('port', flags.port, DEFAULTS.apiPort, 1, 65000);
  const topic = flags.topic ?? DEFAULTS.topic;
  const retentionMs = durationFlag('retention', flags.retention) ?? DEFAULTS.retentionMs;
  // The nodes inherit this environment, LAGOON_API_TOKENS with it: refuse a malformed list before starting anything
  // (the message names entries by position, never their values).
  const tokens = parseApiTokens(process.env.LAGOON_API_TOKENS);
  if (!tokens.ok)
    throw new LagoonError('bad_config', `Invalid node configuration: apiTokens: ${tokens.error}`);
  let cluster: LocalCluster | undefined;
  let brokers: string[];
  let rf: number;
  let minIsr: number;

  if (flags.kafka) {
    brokers = flags.kafka.split(',').map((s) => s.trim());
    rf = DEFAULTS.replicationFactor;
    minIsr = DEFAULTS.minInsyncReplicas;
    io.err(`Using external Kafka at ${brokers.join(',')} (no local brokers started)`);
  } else {
    const count = intFlag('brokers', flags.brokers, DEFAULTS.brokers, 1, 3);
    cluster = LocalCluster.open({
      dataDir,
      brokers: LocalCluster.exists(dataDir) ? undefined : count,
      basePort: flags['kafka-port'] ? Number(flags['kafka-port']) : DEFAULTS.kafkaBasePort,
      progress: (line) => io.err(line),
    });
    io.err(`Starting ${cluster.brokerCount} Kafka broker(s) (data in ${cluster.layout.kafkaDir})…`);
    await cluster.start({ owner: process.pid });
    brokers = cluster.bootstrap;
    rf = Math.min(3, cluster.brokerCount);
    minIsr = cluster.brokerCount >= 3 ? 2 : 1;
  }

  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    io.err('Stopping nodes…');
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    if (cluster) {
      io.err('Stopping Kafka…');
      await cluster.stop();
    }
    io.err('Stopped.');
  };

  try {
    const admin = kafkaClient({ brokers, clientId: 'lagoon-up' }).admin();
    await admin.connect();
    try {
      const how = await ensureTopic(admin, {
        topic,
        partitions,
        replicationFactor: rf,
        minInsyncReplicas: minIsr,
        retentionMs,
      });
      io.err(
        `Topic ${topic}: ${how} (${partitions} partitions, RF ${rf}, min.insync.replicas ${minIsr}, retention ${retentionMs} ms for a topic created now)`,
      );
    } finally {
      await admin.disconnect();
    }

    const urls: string[] = [];
    const allUrls = Array.from({ length: nodes }, (_, i) => `http://127.0.0.1:${basePort + i}`);
    for (let i = 1; i <= nodes; i++) {
      const id = `node-${i}`;
      const port = basePort + i - 1;
      const logFile = path.join(dataDir, 'nodes', id, 'node.log');
      const child = spawnNode(
        {
          id,
          port,
          brokers,
          db: path.join(dataDir, 'nodes', id, 'lagoon.db'),
          topic,
          partitions,
          peers: allUrls.filter((_, j) => j !== i - 1),
          eventsFile: path.join(dataDir, EVENTS_FILE),
        },
        {
          logFile,
          env: {
            LAGOON_REPLICATION_FACTOR: String(rf),
            LAGOON_MIN_INSYNC_REPLICAS: String(minIsr),
            LAGOON_RETENTION_MS: String(retentionMs),
            // Retention safety: a snapshot at least every half retention (unless set explicitly).
            LAGOON_SNAPSHOT_INTERVAL_MS:
              process.env.LAGOON_SNAPSHOT_INTERVAL_MS ??
              String(Math.min(DEFAULTS.snapshotIntervalMs, Math.floor(retentionMs / 2))),
          },
        },
      );
      child.once('exit', (code, sig) => {
        if (!stopping) io.err(`${id} exited (${sig ?? code}); see ${logFile}`);
      });
      children.push(child);
      urls.push(`http://127.0.0.1:${port}`);
    }
    io.err(`Waiting for ${nodes} node(s) to be ready…`);
    await Promise.all(urls.map((u) => waitNodeReady(u, 120_000)));
    io.out('');
    io.out('Lagoon is up.');
    for (let i = 0; i < urls.length; i++) {
      io.out(
        `  node-${i + 1}  API ${urls[i]}/v1/kv/{key}   docs ${urls[i]}/docs   dashboard ${urls[i]}/dashboard`,
      );
    }
    io.out(`  Kafka   ${brokers.join(',')}`);
    if (tokens.tokens.length > 0) {
      io.out(
        `  API tokens on (LAGOON_API_TOKENS): send Authorization: Bearer TOKEN; dashboard: …/dashboard#token=TOKEN (read scope)`,
      );
    }
    io.out('Press Ctrl-C to stop.');
  } catch (e) {
    await stopAll();
    throw e;
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stopAll();
  return 0;
}
