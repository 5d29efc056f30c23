import path from 'node:path';

/** Where one local broker lives: its ports and files. Pure: derived from the data dir and a base port. */
export interface BrokerLayout {
  id: number;
  /** PLAINTEXT listener: the one clients (kafkajs, tools) use. */
  port: number;
  /** CONTROLLER listener: KRaft quorum traffic only; clients never talk to it. */
  controllerPort: number;
  /**
   * Where the broker's fault proxy listens. Used only by a proxied cluster, which advertises it instead
   * of `port`, so clients and inter-broker replication all pass through the proxy (src/chaos/proxy.ts).
   */
  proxyPort: number;
  dir: string;
  logDir: string;
  propsFile: string;
  log4jFile: string;
  serverLog: string;
  stdoutLog: string;
  pidFile: string;
}

export interface ClusterLayout {
  dataDir: string;
  kafkaDir: string;
  stateFile: string;
  watchdogPidFile: string;
  /** Brokers advertise their proxyPort (see BrokerLayout.proxyPort). */
  proxied: boolean;
  brokers: BrokerLayout[];
}

/** Port scheme: broker i (1-based) gets PLAINTEXT base+i-1, CONTROLLER base+100+i-1 and proxy base+200+i-1. */
export function brokerPorts(
  basePort: number,
  id: number,
): { port: number; controllerPort: number; proxyPort: number } {
  return {
    port: basePort + id - 1,
    controllerPort: basePort + 100 + id - 1,
    proxyPort: basePort + 200 + id - 1,
  };
}

/**
 * The ports the brokers themselves listen on: what `checkPortsFree` probes before a first start. Proxy
 * ports are not among them: the proxies may already listen there (they start before the brokers), and
 * a taken proxy port fails the proxy's own listen.
 */
export function clusterPorts(layout: ClusterLayout): number[] {
  return layout.brokers.flatMap((b) => [b.port, b.controllerPort]);
}

export function clusterLayout(
  dataDir: string,
  brokerCount: number,
  basePort: number,
  proxied = false,
): ClusterLayout {
  const abs = path.resolve(dataDir);
  const kafkaDir = path.join(abs, 'kafka');
  const brokers: BrokerLayout[] = [];
  for (let id = 1; id <= brokerCount; id++) {
    const dir = path.join(kafkaDir, `broker-${id}`);
    brokers.push({
      id,
      ...brokerPorts(basePort, id),
      dir,
      logDir: path.join(dir, 'data'),
      propsFile: path.join(dir, 'server.properties'),
      log4jFile: path.join(dir, 'log4j2.yaml'),
      serverLog: path.join(dir, 'logs', 'server.log'),
      stdoutLog: path.join(dir, 'logs', 'stdout.log'),
      pidFile: path.join(dir, 'broker.pid'),
    });
  }
  return {
    dataDir: abs,
    kafkaDir,
    stateFile: path.join(kafkaDir, 'cluster.json'),
    watchdogPidFile: path.join(kafkaDir, 'watchdog.pid'),
    proxied,
    brokers,
  };
}

/** Bootstrap list of every broker's client listener, or of its proxy in a proxied cluster. */
export function bootstrapOf(layout: ClusterLayout): string[] {
  return layout.brokers.map((b) => `127.0.0.1:${layout.proxied ? b.proxyPort : b.port}`);
}
