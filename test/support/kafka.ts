import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { LocalCluster } from '../../src/cluster/local-cluster.js';
import { kafkaClient } from '../../src/log/kafka-client.js';

/** The run's Kafka bootstrap list (see test/setup/kafka-global.ts). */
export function brokers(): string[] {
  return inject('kafkaBrokers');
}

/** The local cluster, for fault injection; undefined when tests run against an external cluster. */
export function localCluster(): LocalCluster | undefined {
  const dir = inject('kafkaDataDir');
  return dir ? LocalCluster.open({ dataDir: dir }) : undefined;
}

/** A unique name per test, so tests never share topics or groups. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export function testKafka(clientId = uniqueName('test')) {
  return kafkaClient({ brokers: brokers(), clientId });
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` (a liveness bound: minutes). */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 120_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
  );
}
