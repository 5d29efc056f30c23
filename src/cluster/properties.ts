import type { BrokerLayout, ClusterLayout } from './layout.js';

/**
 * server.properties for one combined broker+controller KRaft node. Pure.
 * Replication settings follow the cluster size: RF 3 / min ISR 2 on three brokers, 1/1 in light mode.
 */
export function brokerProperties(cluster: ClusterLayout, broker: BrokerLayout): string {
  const n = cluster.brokers.length;
  const rf = Math.min(3, n);
  const minIsr = n >= 3 ? 2 : 1;
  const voters = cluster.brokers.map((b) => `${b.id}@127.0.0.1:${b.controllerPort}`).join(',');
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': broker.id,
    'controller.quorum.voters': voters,
    listeners: `PLAINTEXT://127.0.0.1:${broker.port},CONTROLLER://127.0.0.1:${broker.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${broker.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': broker.logDir,
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': 12,
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': minIsr,
    'min.insync.replicas': minIsr,
    'default.replication.factor': rf,
    'unclean.leader.election.enable': false,
    // Lagoon creates its topics explicitly, with checked settings.
    'auto.create.topics.enable': false,
    'group.initial.rebalance.delay.ms': 0,
    // Faster fault detection than the defaults (9 s / 30 s): chaos scenarios measure recovery.
    'broker.session.timeout.ms': 6000,
    'broker.heartbeat.interval.ms': 1000,
    'replica.lag.time.max.ms': 10000,
    'num.partitions': 1,
    'log.retention.hours': 168,
  };
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** log4j2 config: the broker logs to a rolling file in its own directory, never to our stdout. */
export function log4jConfig(broker: BrokerLayout): string {
  return `Configuration:
  status: warn
  Appenders:
    RollingFile:
      name: server
      fileName: "${broker.serverLog}"
      filePattern: "${broker.serverLog}.%i"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
      Policies:
        SizeBasedTriggeringPolicy:
          size: 20MB
      DefaultRolloverStrategy:
        max: 3
  Loggers:
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
    Root:
      level: INFO
      AppenderRef:
        - ref: server
`;
}
