import { monitorEventLoopDelay } from 'node:perf_hooks';
import client from 'prom-client';

/**
 * The node's Prometheus registry. Names follow the de-facto conventions (see SPEC §5); this module
 * holds the lagoon_* request and replication metrics.
 */
export class NodeMetrics {
  readonly registry = new client.Registry();
  readonly writes: client.Histogram<'op' | 'result'>;
  readonly reads: client.Histogram<'consistency' | 'result'>;
  readonly replication: client.Histogram<string>;
  readonly applied: client.Counter<'partition'>;
  readonly brokersUp: client.Gauge<string>;
  readonly kafkaRequests: client.Counter<'client' | 'api'>;

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    registerProcessMetrics(this.registry);
    const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    this.writes = new client.Histogram({
      name: 'lagoon_write_duration_seconds',
      help: 'REST write latency by operation and result',
      labelNames: ['op', 'result'],
      buckets,
      registers: [this.registry],
    });
    this.reads = new client.Histogram({
      name: 'lagoon_read_duration_seconds',
      help: 'REST read latency by consistency level and result',
      labelNames: ['consistency', 'result'],
      buckets,
      registers: [this.registry],
    });
    this.replication = new client.Histogram({
      name: 'lagoon_replication_latency_seconds',
      help: 'Produce time to applied on this replica, per record batch (last record)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
    this.applied = new client.Counter({
      name: 'lagoon_records_applied_total',
      help: 'Records applied into this replica',
      labelNames: ['partition'],
      registers: [this.registry],
    });
    this.brokersUp = new client.Gauge({
      name: 'lagoon_brokers_up',
      help: 'Kafka brokers registered in the cluster metadata as seen by this node',
      registers: [this.registry],
    });
    this.kafkaRequests = new client.Counter({
      name: 'lagoon_kafka_requests_total',
      help: 'Requests this node sent to Kafka brokers, by client (writer: produce path and batches; replica: consumer, monitor and lag tracker) and Kafka API',
      labelNames: ['client', 'api'],
      registers: [this.registry],
    });
  }
}

/**
 * A few process metrics of our own. prom-client's default set is not used: some of its gauges end in
 * `_total`, which Prometheus' own linter (promlint, as in `promtool check metrics`) rejects.
 */
function registerProcessMetrics(registry: client.Registry): void {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  new client.Gauge({
    name: 'lagoon_process_resident_memory_bytes',
    help: 'Resident memory of the node process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().rss);
    },
  });
  new client.Gauge({
    name: 'lagoon_process_heap_used_bytes',
    help: 'V8 heap in use',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  new client.Gauge({
    name: 'lagoon_process_heap_total_bytes',
    help: 'V8 heap reserved (in use or not): part of the resident memory',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapTotal);
    },
  });
  new client.Gauge({
    name: 'lagoon_process_external_memory_bytes',
    help: 'Memory of C++ objects bound to JS objects, Buffers included (kafkajs fetches, SQLite results)',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().external);
    },
  });
  new client.Counter({
    name: 'lagoon_process_cpu_seconds_total',
    help: 'User and system CPU time of the node process',
    registers: [registry],
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new client.Gauge({
    name: 'lagoon_process_event_loop_delay_p99_seconds',
    help: 'p99 event-loop delay since the previous scrape',
    registers: [registry],
    collect() {
      this.set(loop.percentile(99) / 1e9);
      loop.reset();
    },
  });
}
