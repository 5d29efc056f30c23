import { defineConfig } from 'vitest/config';

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
    ],
  },
});
