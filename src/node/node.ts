import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import type { NodeConfig } from '../config.js';
import { Freshness } from '../core/freshness.js';
import { topicTag } from '../core/session.js';
import { dashboardRoutes } from '../dashboard/routes.js';
import { EventLog } from '../lag/events.js';
import { Heartbeats } from '../lag/heartbeat.js';
import { registerLagMetrics } from '../lag/metrics.js';
import { lagRoutes } from '../lag/routes.js';
import { LagTracker } from '../lag/tracker.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ClusterMonitor } from '../log/monitor.js';
import { activeController } from '../log/quorum.js';
import { ensureTopic } from '../log/topic.js';
import { Writer } from '../log/writer.js';
import { Replica } from '../replica/replica.js';
import { OffsetWatch } from '../store/offset-watch.js';
import { ReplicaStore } from '../store/replica-store.js';
import { NodeMetrics } from './metrics.js';

export type NodeState = 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The composition root of one Lagoon node: SQLite store, Kafka monitor, producer, replica worker and
 * HTTP API, started in that order and closed in reverse. The API serves eventual reads from SQLite as
 * soon as it listens, even before Kafka is reachable; the replica joins when Kafka answers.
 */
export class LagoonNode {
  readonly config: NodeConfig;
  readonly metrics: NodeMetrics;
  state: NodeState = 'starting';
  private readonly store: ReplicaStore;
  private readonly monitor: ClusterMonitor;
  private readonly writer: Writer | undefined;
  private readonly replica: Replica | undefined;
  private readonly watch: OffsetWatch;
  private readonly freshness = new Freshness();
  private readonly api: FastifyInstance;
  private readonly groupId: string;
  private readonly events: EventLog;
  private readonly tracker: LagTracker;
  private readonly heartbeats: Heartbeats | undefined;
  private connectLoop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  address = '';

  private constructor(config: NodeConfig) {
    this.config = config;
    this.metrics = new NodeMetrics(config.id);
    fs.mkdirSync(path.dirname(path.resolve(config.db)), { recursive: true });
    this.store = ReplicaStore.open(config.db, { partitions: config.partitions });
    this.watch = new OffsetWatch(() => this.store.appliedOffsets());
    for (const [p, o] of this.store.appliedOffsets()) this.freshness.observeApplied(p, o);
    const kafka = kafkaClient({
      brokers: config.kafka.brokers,
      clientId: `lagoon-${config.id}`,
      ssl: config.kafka.ssl,
      ...(config.kafka.sasl ? { sasl: config.kafka.sasl } : {}),
    });
    this.groupId = `lagoon-replica-${config.id}`;
    this.monitor = new ClusterMonitor(kafka, {
      topic: config.topic,
      minInsyncReplicas: config.minInsyncReplicas,
      intervalMs: config.offsetRefreshMs,
      onRefresh: (view) => {
        for (const p of view.partitions)
          if (p) this.freshness.observeEnd(p.partition, p.endOffset, p.observedAt);
        this.metrics.brokersUp.set(view.brokers.length);
      },
    });
    if (config.role !== 'replica') {
      this.writer = new Writer(kafka, {
        topic: config.topic,
        lingerMs: config.lingerMs,
        gate: (p) => this.monitor.writeGate(p),
      });
    }
    if (config.role !== 'api') {
      this.replica = new Replica(kafka, this.store, {
        topic: config.topic,
        groupId: this.groupId,
        onApplied: (partition, applied, records, lastTs) => {
          this.watch.notify(partition, applied);
          this.tracker.observeRecord(partition, applied - 1, lastTs);
          this.freshness.observeApplied(partition, applied);
          this.metrics.applied.inc({ partition: String(partition) }, records);
          this.metrics.replication.observe(Math.max(0, Date.now() - lastTs) / 1000);
        },
      });
    }
    this.events = new EventLog({ file: config.eventsFile });
    this.tracker = new LagTracker({
      nodeId: config.id,
      topic: config.topic,
      partitions: config.partitions,
      selfGroup: this.groupId,
      kafka,
      monitor: this.monitor,
      store: this.store,
      events: this.events,
      peers: config.peers,
      replicaProgressAt: () => this.replica?.lastBatchAt ?? 0,
      // Brokers forward DescribeQuorum to the active controller; ask them all, first answer wins.
      controller:
        config.kafka.ssl || config.kafka.sasl
          ? undefined
          : () =>
              activeController(
                config.kafka.brokers.map((b) => {
                  const [host, port] = b.split(':');
                  return { host: host!, port: Number(port) };
                }),
                1000,
              ),
    });
    registerLagMetrics(this.metrics.registry, () => this.tracker.report());
    if (this.writer && config.heartbeatMs > 0) {
      this.heartbeats = new Heartbeats(this.writer, this.monitor, {
        node: config.id,
        partitions: config.partitions,
        everyMs: config.heartbeatMs,
      });
    }
    this.api = buildApi(
      {
        config,
        store: this.store,
        writer: this.writer,
        monitor: this.monitor,
        watch: this.watch,
        freshness: this.freshness,
        sessionTag: topicTag(config.topic),
        replicaStatus: () => ({
          state: this.replica?.state ?? 'none',
          group: this.groupId,
          lastError: this.replica?.lastError,
        }),
        observe: {
          write: (op, result, s) => this.metrics.writes.observe({ op, result }, s),
          read: (consistency, result, s) => this.metrics.reads.observe({ consistency, result }, s),
        },
      },
      (app) => {
        lagRoutes(app, this.tracker, this.events);
        dashboardRoutes(app);
        app.get('/metrics', async (_req, reply) =>
          reply.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics()),
        );
      },
    );
  }

  /** Opens the store, starts listening, and connects to Kafka in the background. */
  static async start(config: NodeConfig): Promise<LagoonNode> {
    const node = new LagoonNode(config);
    node.monitor.start();
    node.writer?.start();
    node.events.start();
    node.tracker.start();
    node.heartbeats?.start();
    node.address = await node.api.listen({ host: config.host, port: config.port });
    node.connectLoop = node.connectReplica();
    node.state = 'running';
    return node;
  }

  get port(): number {
    return Number(new URL(this.address).port);
  }

  /** Resolves once the replica is consuming (tests use it; the API does not wait for it). */
  async replicaStarted(): Promise<void> {
    await this.connectLoop;
  }

  /** Ordered, idempotent shutdown: stop taking requests, drain writes, leave the group, close SQLite. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'stopping';
      await this.api.close().catch(() => {});
      this.heartbeats?.close();
      await this.tracker.close();
      this.events.close();
      await this.writer?.close();
      await this.replica?.close();
      await this.monitor.close();
      this.watch.close();
      this.store.close();
      this.state = 'stopped';
    })();
    return this.closing;
  }

  private async connectReplica(): Promise<void> {
    if (!this.replica) return;
    const admin = kafkaClient({
      brokers: this.config.kafka.brokers,
      clientId: `lagoon-${this.config.id}-admin`,
    });
    let delay = 250;
    while (this.state !== 'stopping' && this.state !== 'stopped') {
      try {
        const a = admin.admin();
        await a.connect();
        try {
          await ensureTopic(a, {
            topic: this.config.topic,
            partitions: this.config.partitions,
            replicationFactor: this.config.replicationFactor,
            minInsyncReplicas: this.config.minInsyncReplicas,
          });
        } finally {
          await a.disconnect().catch(() => {});
        }
        await this.replica.start();
        return;
      } catch (e) {
        if ((e as { code?: string }).code === 'unsafe_topic') {
          // Refuse to consume an unsafe topic; the API keeps serving what SQLite holds and says why.
          this.replica.state = 'failed';
          this.replica.lastError = (e as Error).message;
          process.stderr.write(`lagoon node ${this.config.id}: ${(e as Error).message}\n`);
          return;
        }
        this.replica.lastError = (e as Error).message;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }
}
