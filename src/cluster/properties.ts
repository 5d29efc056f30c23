import type { BrokerLayout, ClusterLayout } from './layout.js';

/**
 * server.properties for one combined broker+controller KRaft node. Pure.
 * Replication settings follow the cluster size: RF 3 / min ISR 2 on three brokers, 1/1 in light mode; request
 * thread pools follow the `cores` of the machine the cluster shares.
 */
export function brokerProperties(cluster: ClusterLayout, broker: BrokerLayout, cores: number): string {
  const n = cluster.brokers.length;
  const share = Math.max(1, Math.floor(cores / n));
  const rf = Math.min(3, n);
  const minIsr = n >= 3 ? 2 : 1;
  const voters = cluster.brokers.map((b) => `${b.id}@127.0.0.1:${b.controllerPort}`).join(',');
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': broker.id,
    'controller.quorum.voters': voters,
    listeners: `PLAINTEXT://127.0.0.1:${broker.port},CONTROLLER://127.0.0.1:${broker.controllerPort}`,
    // A proxied cluster advertises the broker's fault proxy: clients follow advertised addresses and
    // replica fetchers connect to the leader's, so no client and no replication bypasses the proxy.
    // The CONTROLLER listener (KRaft quorum, broker heartbeats) stays direct: proxy faults model a
    // slow or partitioned data path, not a controller that fences the broker.
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${cluster.proxied ? broker.proxyPort : broker.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': broker.logDir,
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': 12,
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': minIsr,
    // Atomic batches (POST /v1/batch) are Kafka transactions. Few coordinator partitions: created on the first
    // batch, 50 (the default) take long on a small machine. A transaction left open by a node that died is
    // aborted by the coordinator once it times out (the node's producer asks for 10 s); the check for timed-out
    // transactions runs every 10 s by default, which would hold every replica's read-committed fetch on those
    // partitions up to 10 s longer.
    'transaction.state.log.num.partitions': 6,
    'transaction.abort.timed.out.transaction.cleanup.interval.ms': 1000,
    'min.insync.replicas': minIsr,
    'default.replication.factor': rf,
    'unclean.leader.election.enable': false,
    // Lagoon creates its topics explicitly, with checked settings.
    'auto.create.topics.enable': false,
    'group.initial.rebalance.delay.ms': 0,
    // Failover speed. A dead broker's partitions get new leaders (and it leaves every ISR, so acks=all
    // writes to partitions it only followed stop waiting for it) once the controller fences it, i.e.
    // broker.session.timeout.ms after its last heartbeat (Kafka's defaults: 9 s, heartbeat 2 s). On
    // loopback 3 s / 0.5 s is safe; the price is that a broker frozen longer than 3 s (a GC pause,
    // SIGSTOP) is fenced and its leaderships move. See docs/architecture.md (failover).
    'broker.session.timeout.ms': 3000,
    'broker.heartbeat.interval.ms': 500,
    'replica.lag.time.max.ms': 10000,
    'num.partitions': 1,
    'log.retention.hours': 168,
    // How often brokers look for segments past their retention (Kafka's default: 5 min). A topic with a short
    // retention (tests of gap detection and bootstrap) sees its records go within seconds; the check is cheap.
    'log.retention.check.interval.ms': 5000,
    // Request threads sized to the broker's share of the machine (Kafka's defaults, 3 network and 8 I/O
    // threads, are for a broker with a machine of its own). Three brokers on two cores, 20 s of 256-connection
    // PUTs, 4–5 runs each (single runs vary ±25%): 11 threads each, mean 2,930 req/s at 346 µs of broker CPU
    // per write; 1 + 1, 3,420 req/s at 263 µs.
    'num.network.threads': Math.min(3, share),
    'num.io.threads': Math.min(8, share),
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
