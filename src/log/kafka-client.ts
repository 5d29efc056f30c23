import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';

/** How to reach Kafka: the bootstrap list plus optional TLS/SASL, passed through to kafkajs untouched. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  ssl?: boolean;
  sasl?: SASLOptions;
}

/** One kafkajs client with Lagoon's timeouts: short enough that a dead cluster is noticed in seconds. */
export function kafkaClient(conn: KafkaConnection, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: conn.clientId,
    brokers: conn.brokers,
    ssl: conn.ssl,
    sasl: conn.sasl,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, retries: 5, maxRetryTime: 2000 },
    ...overrides,
  });
}
