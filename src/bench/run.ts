import type { CliIo } from '../cli/io.js';

/** `lagoon bench`: placeholder until the benchmark suite lands; says so instead of pretending. */
export async function benchCommand(_args: string[], io: CliIo): Promise<number> {
  io.err(
    'lagoon bench: use `npm run bench` (bench/write-throughput.ts); the CLI entry lands with the bench issue.',
  );
  return 2;
}
