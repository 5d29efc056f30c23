import { defineConfig } from 'vitest/config';

// The chaos suite (`npm run test:chaos`) starts its own clusters and runs for minutes, so it is a project
// only when asked for (`--project chaos`, or LAGOON_CHAOS=1): a plain `vitest run` / `npm test` leaves it out.
const chaosAsked =
  process.env.LAGOON_CHAOS === '1' ||
  process.argv.some((a, i) => a === '--project=chaos' || (a === 'chaos' && process.argv[i - 1] === '--project'));

// Two projects: `unit` is pure and fast; `integration` runs against a real Kafka cluster that
// test/setup/kafka-global.ts starts once per run (or an external one from LAGOON_KAFKA_BROKERS).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // A liveness bound, not a speed one: a shared 2-core machine can be many times slower.
          testTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/setup/kafka-global.ts'],
          // One cluster, shared, on a 2-core machine: files run one at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      ...(chaosAsked
        ? [
            {
              test: {
                name: 'chaos',
                include: ['test/chaos/**/*.test.ts'],
                environment: 'node',
                // No global setup: every scenario starts (and stops) its own cluster and nodes.
                fileParallelism: false,
                testTimeout: 1_200_000,
                hookTimeout: 300_000,
              },
            },
          ]
        : []),
    ],
  },
});
