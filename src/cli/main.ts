import { parseArgs } from 'node:util';
import { DEFAULTS } from '../defaults.js';
import { isLagoonError, LagoonError } from '../errors.js';
import { type CliIo, processIo } from './io.js';
import { kafkaCommand } from './kafka.js';

const HELP = `lagoon — an eventually consistent key-value store on Apache Kafka and SQLite

Usage:
  lagoon up [--brokers 3|1] [--nodes 3] [--partitions 6] [--data-dir .lagoon] [--kafka LIST] [--retention 7d]
  lagoon node --id ID --port N [--kafka LIST] [--db PATH] [--role api|replica|all] [--peers URL,…] [--events-file F]
              [--retention 7d] [--bootstrap]
  lagoon node remove ID [--kafka LIST]              delete a removed node's consumer group (refused while active)
  lagoon snapshot create|list [--node URL]          take or list a node's snapshots (default http://127.0.0.1:8081)
  lagoon kafka fetch|start|stop|kill|pause|resume|status [--broker N] [--brokers 3|1] [--data-dir DIR]
  lagoon chaos SCENARIO|all [--seed N] [--duration S] [--rate R] [--attach] [--out DIR]   (lagoon chaos --help)
  lagoon bench [...]                               (lagoon bench --help)
`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new LagoonError('bad_argument', `--${name} must be a whole number, got '${v}'`);
  return n;
}

/** CLI entry: parses argv, runs one command, maps every failure to a one-line message and an exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    if (argv[0] === 'bench') {
      // The bench has flags of its own (`lagoon bench outage --outage 60`): it reads the raw arguments.
      const { benchCommand } = await import('../bench/run.js');
      return await benchCommand(argv.slice(1), io);
    }
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        'data-dir': { type: 'string' },
        brokers: { type: 'string' },
        broker: { type: 'string' },
        'kafka-port': { type: 'string' },
        nodes: { type: 'string' },
        partitions: { type: 'string' },
        kafka: { type: 'string' },
        id: { type: 'string' },
        port: { type: 'string' },
        db: { type: 'string' },
        role: { type: 'string' },
        topic: { type: 'string' },
        peers: { type: 'string' },
        'events-file': { type: 'string' },
        retention: { type: 'string' },
        bootstrap: { type: 'boolean' },
        node: { type: 'string' },
        seed: { type: 'string' },
        duration: { type: 'string' },
        rate: { type: 'string' },
        attach: { type: 'boolean' },
        out: { type: 'string' },
      },
    });
    const [command, sub] = positionals;
    if (values.help && command === 'chaos') {
      const { chaosUsage } = await import('./chaos.js');
      io.out(chaosUsage());
      return 0;
    }
    if (values.help || command === undefined) {
      io.out(HELP);
      return command === undefined && !values.help ? 1 : 0;
    }
    const dataDir = values['data-dir'] ?? DEFAULTS.dataDir;
    switch (command) {
      case 'kafka':
        return await kafkaCommand(
          sub,
          {
            dataDir,
            brokers: int('brokers', values.brokers),
            broker: int('broker', values.broker),
            basePort: int('kafka-port', values['kafka-port']),
          },
          io,
        );
      case 'up': {
        const { upCommand } = await import('./up.js');
        return await upCommand(values, io);
      }
      case 'node': {
        if (sub === 'remove') {
          const { nodeRemoveCommand } = await import('./membership.js');
          return await nodeRemoveCommand(positionals[2], values, io);
        }
        const { nodeCommand } = await import('./node.js');
        return await nodeCommand(values, io);
      }
      case 'snapshot': {
        const { snapshotCommand } = await import('./snapshot.js');
        return await snapshotCommand(sub, values, io);
      }
      case 'chaos': {
        const { chaosCommand } = await import('./chaos.js');
        return await chaosCommand(sub, values, io);
      }
      case 'bench': {
        const { benchCommand } = await import('../bench/run.js');
        // The bench reads its own flags (some share names with chaos flags): hand it the raw arguments.
        return await benchCommand(argv.slice(argv.indexOf('bench') + 1), io);
      }
      default:
        throw new LagoonError('bad_argument', `Unknown command '${command}'.\n${HELP}`);
    }
  } catch (e) {
    if (isLagoonError(e)) {
      io.err(`lagoon: ${e.message}`);
      return 2;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`lagoon: ${(e as Error).message}\n${HELP}`);
      return 2;
    }
    io.err(`lagoon: unexpected error: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}
