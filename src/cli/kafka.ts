import { ensureKafkaJars } from '../cluster/jars.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { LagoonError } from '../errors.js';
import type { CliIo } from './io.js';

/** Options shared by every `lagoon kafka` subcommand. */
export interface KafkaCliOptions {
  dataDir: string;
  brokers?: number;
  broker?: number;
  basePort?: number;
}

const USAGE =
  'lagoon kafka start|stop|kill|pause|resume|status [--broker N] [--brokers 3|1] [--data-dir DIR]';

/** `lagoon kafka …`: the manual lever on the local cluster in the data dir. */
export async function kafkaCommand(
  action: string | undefined,
  opts: KafkaCliOptions,
  io: CliIo,
): Promise<number> {
  if (action === 'fetch') {
    const started = Date.now();
    const jars = await ensureKafkaJars((line) => io.err(line));
    io.out(
      `Kafka ${jars.version} jars ready (${Date.now() - started} ms): broker ${jars.brokerClasspath}, tools ${jars.toolsClasspath}`,
    );
    return 0;
  }
  const needsExisting = action !== 'start';
  if (needsExisting && !LocalCluster.exists(opts.dataDir)) {
    throw new LagoonError(
      'no_cluster',
      `No local cluster in ${opts.dataDir}. Start one with: lagoon kafka start --data-dir ${opts.dataDir}`,
    );
  }
  const cluster = LocalCluster.open({
    dataDir: opts.dataDir,
    brokers: action === 'start' && opts.broker === undefined ? opts.brokers : undefined,
    basePort: opts.basePort,
    progress: (line) => io.err(line),
  });
  const broker = () => {
    if (opts.broker === undefined)
      throw new LagoonError('bad_argument', `--broker N is required. Usage: ${USAGE}`);
    return opts.broker;
  };
  switch (action) {
    case 'start':
      if (opts.broker !== undefined) {
        await cluster.startBroker(opts.broker);
        io.err(`broker ${opts.broker} started and registered`);
      } else {
        // No owner: a cluster started from the shell runs in the background until `lagoon kafka stop`.
        await cluster.start();
      }
      await printStatus(cluster, io);
      return 0;
    case 'stop':
      if (opts.broker !== undefined) {
        const how = await cluster.stopBroker(opts.broker);
        io.err(`broker ${opts.broker}: ${how === 'gone' ? 'was not running' : `stopped (${how})`}`);
      } else {
        await cluster.stop();
        io.err('all brokers stopped');
      }
      return 0;
    case 'kill':
      await cluster.killBroker(broker());
      io.err(`broker ${opts.broker} killed (SIGKILL)`);
      return 0;
    case 'pause':
      cluster.pauseBroker(broker());
      io.err(`broker ${opts.broker} paused (SIGSTOP)`);
      return 0;
    case 'resume':
      cluster.resumeBroker(broker());
      io.err(`broker ${opts.broker} resumed (SIGCONT)`);
      return 0;
    case 'status':
      await printStatus(cluster, io);
      return 0;
    default:
      throw new LagoonError('bad_argument', `Unknown kafka action '${action ?? ''}'. Usage: ${USAGE}`);
  }
}

async function printStatus(cluster: LocalCluster, io: CliIo): Promise<void> {
  for (const b of cluster.status()) {
    const mem = b.rssBytes === undefined ? '' : `  rss=${Math.round(b.rssBytes / 1024 / 1024)}MiB`;
    io.out(`broker ${b.id}  ${b.address}  pid=${b.pid ?? '-'}  ${b.state}${mem}`);
  }
  const controller = await cluster.activeController();
  io.out(`controller ${controller ?? 'none (no quorum)'}`);
}
