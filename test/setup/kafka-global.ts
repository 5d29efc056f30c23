import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findFreeBasePort, LocalCluster } from '../../src/cluster/local-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap list of the cluster the integration tests use. */
    kafkaBrokers: string[];
    /** Data dir of the local cluster (empty when the cluster is external or a container: no fault injection). */
    kafkaDataDir: string;
  }
}

let cluster: LocalCluster | undefined;
let dataDir: string | undefined;
let stopContainer: (() => Promise<void>) | undefined;

/**
 * Provides one Kafka cluster per test run:
 * - LAGOON_KAFKA_BROKERS=host:port,… → an external cluster (no fault injection);
 * - LAGOON_TEST_KAFKA=docker → @testcontainers/kafka (needs a Docker engine);
 * - otherwise a local 3-broker KRaft cluster of JVMs on free loopback ports, owned by this process:
 *   a watchdog stops the brokers if the run dies, even by SIGKILL.
 */
export async function setup(project: TestProject): Promise<void> {
  const external = process.env.LAGOON_KAFKA_BROKERS;
  if (external) {
    project.provide('kafkaBrokers', external.split(','));
    project.provide('kafkaDataDir', '');
    return;
  }
  if (process.env.LAGOON_TEST_KAFKA === 'docker') {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const container = await new KafkaContainer('apache/kafka:4.1.1').withKraft().start();
    stopContainer = async () => {
      await container.stop();
    };
    project.provide('kafkaBrokers', [`${container.getHost()}:${container.getMappedPort(9093)}`]);
    project.provide('kafkaDataDir', '');
    return;
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-test-'));
  const started = Date.now();
  cluster = LocalCluster.open({
    dataDir,
    brokers: 3,
    basePort: await findFreeBasePort(3),
    progress: (line) => console.log(`[kafka] ${line}`),
  });
  await cluster.start({ owner: process.pid });
  console.log(`[kafka] test cluster ready in ${Date.now() - started} ms at ${cluster.bootstrap.join(',')}`);
  project.provide('kafkaBrokers', cluster.bootstrap);
  project.provide('kafkaDataDir', dataDir);
}

export async function teardown(): Promise<void> {
  await stopContainer?.();
  if (cluster) await cluster.stop(10_000);
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
