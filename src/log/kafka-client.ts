import { Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';

/** How to reach Kafka: the bootstrap list plus optional TLS/SASL, passed through to kafkajs untouched. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  ssl?: boolean;
  sasl?: SASLOptions;
}

const KAFKAJS_LEVELS: Record<string, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

/**
 * kafkajs's own log, off unless `LAGOON_KAFKAJS_LOG` names a level (error, warn, info, debug): one JSON line per
 * entry through kafkajs's console logger (info and debug on stdout, warnings and errors on stderr; a spawned
 * node writes both to its node.log), for diagnosing a client that waits without an error.
 */
function kafkajsLogLevel(): logLevel {
  const want = process.env.LAGOON_KAFKAJS_LOG?.toLowerCase();
  return want !== undefined && want in KAFKAJS_LEVELS ? KAFKAJS_LEVELS[want]! : logLevel.NOTHING;
}

/** One kafkajs client with Lagoon's timeouts: short enough that a dead cluster is noticed in seconds. */
export function kafkaClient(conn: KafkaConnection, overrides: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: conn.clientId,
    brokers: conn.brokers,
    ssl: conn.ssl,
    sasl: conn.sasl,
    logLevel: kafkajsLogLevel(),
    connectionTimeout: 3000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, retries: 5, maxRetryTime: 2000 },
    ...overrides,
  });
}
