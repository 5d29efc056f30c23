import { LagoonError } from '../errors.js';

/** The flags each `lagoon bench` sub-command takes: name → takes a value. The main run has no sub-command. */
const FLAGS: Record<string, Record<string, boolean>> = {
  '': { quick: false, window: true, 'no-light': false, profile: false, 'profile-dir': true, out: true },
  apply: { records: true },
  rebuild: { keys: true },
  soak: { minutes: true, writes: true, reads: true, window: true, warmup: true },
  outage: { outage: true, warmup: true, keys: true, 'key-rate': true, out: true, render: true },
  noop: { port: true },
};

export const BENCH_USAGE = `lagoon bench — Lagoon's figures side by side with Kafka's own tools, in one run (docs/benchmarks.md)

Usage:
  lagoon bench [--quick] [--window S] [--no-light] [--profile [--profile-dir DIR]] [--out DIR]
        every figure (full run ~18 min with the light configuration; --quick under 10 min);
        the results JSON's path is the last line printed
  lagoon bench apply [--records N]          store-level apply rate against raw better-sqlite3
  lagoon bench rebuild [--keys N]           rebuilding a replica from the log, and from a snapshot + tail
  lagoon bench soak [--minutes M] [--writes R] [--reads R] [--window S] [--warmup S]
  lagoon bench outage [--outage S] [--warmup S] [--keys N] [--key-rate R] [--out DIR] | --render FILE
  lagoon bench noop [--port N]              the anchor's no-op fastify server (serves until SIGTERM)
`;

/**
 * Checks `lagoon bench` arguments before anything starts: `--help` answers with the usage, and an unknown
 * sub-command or flag, or a flag without its value, is refused — a mistyped flag never silently starts an
 * 18-minute run with the defaults. Returns 'help' when the usage was asked for.
 */
export function checkBenchArgs(args: string[]): 'help' | 'run' {
  if (args.includes('--help') || args.includes('-h')) return 'help';
  const sub = args[0] !== undefined && !args[0].startsWith('-') ? args[0] : '';
  const flags = FLAGS[sub];
  if (!flags) throw new LagoonError('bad_argument', `Unknown bench command '${sub}'.\n${BENCH_USAGE}`);
  for (let i = sub ? 1 : 0; i < args.length; i++) {
    const a = args[i]!;
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name === undefined || !(name in flags)) {
      throw new LagoonError(
        'bad_argument',
        `lagoon bench${sub ? ` ${sub}` : ''} takes no '${a}'.\n${BENCH_USAGE}`,
      );
    }
    if (flags[name]) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--'))
        throw new LagoonError('bad_argument', `--${name} needs a value`);
      i++;
    }
  }
  return 'run';
}
