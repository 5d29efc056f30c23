import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Kafka } from 'kafkajs';
import { buildApi } from '../api/app.js';
import type { NodeConfig } from '../config.js';
import { peerToken } from '../core/api-tokens.js';
import { type ClusterFacts, clusterChanges } from '../core/cluster-changes.js';
import { Freshness } from '../core/freshness.js';
import { deletedRange } from '../core/lag-status.js';
import { type CatchUpTarget, catchUpGap, latchTarget, type Readiness, readiness } from '../core/readiness.js';
import { topicTag } from '../core/session.js';
import { dashboardRoutes } from '../dashboard/routes.js';
import { LagoonError } from '../errors.js';
import { EventLog } from '../lag/events.js';
import { Heartbeats } from '../lag/heartbeat.js';
import { LagHistory } from '../lag/history.js';
import { registerLagMetrics } from '../lag/metrics.js';
import { PeerSet } from '../lag/peer-set.js';
import { lagRoutes } from '../lag/routes.js';
import { LagTracker, REPLICA_GROUP_PREFIX } from '../lag/tracker.js';
import { BatchWriter } from '../log/batch-writer.js';
import { HighWatermarks } from '../log/high-watermarks.js';
import { kafkaApiName } from '../log/kafka-apis.js';
import { kafkaClient } from '../log/kafka-client.js';
import { ClusterMonitor, type ClusterView } from '../log/monitor.js';
import { activeController } from '../log/quorum.js';
import { JOIN_GROUP, SYNC_GROUP, stallGuardedSockets } from '../log/stall-guard.js';
import { ensureTopic, fetchLogStarts, type TopicSpec, verifyTopic } from '../log/topic.js';
import { type GateRefusal, Writer, writerClient } from '../log/writer.js';
import { OutboxDrainer } from '../outbox/drainer.js';
import { Outbox, outboxPathFor } from '../outbox/outbox.js';
import { Replica } from '../replica/replica.js';
import { OffsetWatch } from '../store/offset-watch.js';
import { ReplicaStore } from '../store/replica-store.js';
import { SnapshotKeeper } from '../store/snapshot-keeper.js';
import { bootstrapFromPeers } from './bootstrap.js';

import { type EventLogFn, eventLogger, type Logger, nodeLogger } from './logger.js';
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
  /** JSON lines on stderr: every state change of the node and its parts (src/node/logger.ts). */
  readonly log: Logger;
  private readonly logNode: EventLogFn;
  state: NodeState = 'starting';
  /** When the replica first caught up with the log's end after joining its group (0: not yet). */
  private caughtUpAt = 0;
  /** The log's end as first read after the replica's join: what it must reach to be caught up (readiness). */
  private catchUpTarget: CatchUpTarget | undefined;
  /** What the last monitor refresh showed, to log what changed. */
  private lastFacts: ClusterFacts | undefined;
  private readonly store: ReplicaStore;
  private readonly monitor: ClusterMonitor;
  private readonly writer: Writer | undefined;
  private readonly batchWriter: BatchWriter | undefined;
  private readonly outbox: Outbox | undefined;
  private readonly drainer: OutboxDrainer | undefined;
  private replica: Replica | undefined;
  private readonly kafka: Kafka;
  /** The nodes this one compares digests with: --peers and nodes that introduced themselves (Lagoon-Peer). */
  private readonly peers: PeerSet;
  private readonly snapshots: SnapshotKeeper | undefined;
  /** Set while the replica is rebuilt from a peer's snapshot: nothing is served meanwhile (replica_bootstrapping). */
  private bootstrapping: string | undefined;
  private rebuildTimer: NodeJS.Timeout | undefined;
  /**
   * False until the store's offsets were compared with the log's start (prepareReplica). Until then an empty store
   * serves nothing: its 404s would claim that keys do not exist, while the log may hold them or may have lost them.
   */
  private logChecked = false;
  private readonly emptyAtStart: boolean;
  private readonly watch: OffsetWatch;
  private readonly freshness = new Freshness();
  private readonly api: FastifyInstance;
  private readonly groupId: string;
  private readonly events: EventLog;
  private readonly tracker: LagTracker;
  private readonly history: LagHistory;
  private readonly heartbeats: Heartbeats | undefined;
  private connectLoop: Promise<void> | undefined;
  /**
   * Why this node must take no writes because of its topic (unchecked yet, missing, or unsafe — e.g. another
   * partition count than this node routes keys with), or undefined once the topic was checked and is safe.
   */
  private topicProblem: string | undefined = 'the topic has not been checked yet';
  private topicTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  address = '';

  private constructor(config: NodeConfig) {
    this.config = config;
    this.log = nodeLogger(config.id, config.logLevel);
    this.logNode = eventLogger(this.log, 'node');
    if (config.testBreaks.length > 0 || config.testApplyDelayMs > 0) {
      this.log.warn(
        {
          component: 'node',
          event: 'test_breaks',
          breaks: config.testBreaks,
          applyDelayMs: config.testApplyDelayMs,
        },
        `TEST ONLY — deliberately broken: ${config.testBreaks.join(', ') || 'none'}; apply delay ${config.testApplyDelayMs} ms. Never run this in production.`,
      );
    }
    this.metrics = new NodeMetrics(config.id);
    fs.mkdirSync(path.dirname(path.resolve(config.db)), { recursive: true });
    this.store = ReplicaStore.open(config.db, {
      partitions: config.partitions,
      retentionMs: config.bookkeepingRetentionMs,
    });
    this.watch = new OffsetWatch(() => this.store.appliedOffsets());
    this.emptyAtStart = this.store.isEmpty();
    for (const [p, o] of this.store.appliedOffsets()) this.freshness.observeApplied(p, o);
    // The replica's consumer, the monitor (strong reads' ListOffsets rounds) and the lag tracker: a connection
    // to a frozen broker is given up after LAGOON_KAFKA_STALL_MS (3 s) with no byte back, as the writer's is (a
    // group's rebalance may wait longer). A live broker answers a fetch within its max wait (500 ms), others at once.
    const kafka = kafkaClient(
      {
        brokers: config.kafka.brokers,
        clientId: `lagoon-${config.id}`,
        ssl: config.kafka.ssl,
        ...(config.kafka.sasl ? { sasl: config.kafka.sasl } : {}),
      },
      {
        socketFactory: stallGuardedSockets(config.kafkaStallMs, {
          mayWait: [JOIN_GROUP, SYNC_GROUP],
          onRequest: this.countKafkaRequest('replica'),
        }),
      },
    );
    this.groupId = `${REPLICA_GROUP_PREFIX}${config.id}`;
    this.monitor = new ClusterMonitor(kafka, {
      topic: config.topic,
      minInsyncReplicas: config.minInsyncReplicas,
      intervalMs: config.offsetRefreshMs,
      bootstrap: config.kafka.brokers,
      // Raw ListOffsets speaks TLS but not SASL; with SASL the monitor falls back to kafkajs's (see monitor.ts).
      ...(config.kafka.sasl
        ? {}
        : {
            highWatermarks: new HighWatermarks({
              ssl: config.kafka.ssl,
              timeoutMs: config.kafkaStallMs,
              clientId: `lagoon-${config.id}`,
            }),
          }),
      onRefresh: (view) => {
        for (const p of view.partitions)
          if (p) this.freshness.observeEnd(p.partition, p.endOffset, p.observedAt);
        this.metrics.brokersUp.set(view.brokers.length);
        this.observeCluster(view);
      },
    });
    if (config.role !== 'replica') {
      // Its own client: each produce attempt is bounded short (writerClient), then retried to the deadline.
      const writerKafka = kafkaClient(
        {
          brokers: config.kafka.brokers,
          clientId: `lagoon-${config.id}-writer`,
          ssl: config.kafka.ssl,
          ...(config.kafka.sasl ? { sasl: config.kafka.sasl } : {}),
        },
        writerClient(this.countKafkaRequest('writer')),
      );
      this.writer = new Writer(writerKafka, {
        topic: config.topic,
        lingerMs: config.lingerMs,
        gate: (p) => this.writeGate(p),
        testBreaks: {
          ackBeforeKafka: config.testBreaks.includes('ack-before-kafka'),
          unknownAsDefinite: config.testBreaks.includes('unknown-as-definite'),
        },
      });
      // Atomic batches: one transactional producer per node, its id stable across restarts (fencing).
      this.batchWriter = new BatchWriter(writerKafka, {
        topic: config.topic,
        transactionalId: `lagoon-${config.id}-batch`,
        gate: (p) => this.writeGate(p),
        testDieBeforeCommit: config.testBreaks.includes('batch-dies-before-commit'),
      });
    }
    if (this.writer) {
      // Buffered writes: their own SQLite file beside the store, drained through the same Writer.
      this.outbox = Outbox.open(config.outboxDb ?? outboxPathFor(config.db), { max: config.outboxMax });
      this.drainer = new OutboxDrainer(this.outbox, this.writer, {
        gate: (p) => this.writeGate(p),
        attemptTimeoutMs: config.writeTimeoutMs,
        keepSentMs: config.bookkeepingRetentionMs,
        log: eventLogger(this.log, 'outbox'),
      });
    }
    this.kafka = kafka;
    if (config.role !== 'api') {
      this.replica = this.newReplica();
      this.snapshots = new SnapshotKeeper({
        store: this.store,
        dir: config.snapshotDir ?? path.join(path.dirname(path.resolve(config.db)), 'snapshots'),
        node: config.id,
        topic: config.topic,
        keep: config.snapshotKeep,
        intervalMs: config.snapshotIntervalMs,
        unfit: () => this.snapshotUnfit(),
        log: eventLogger(this.log, 'snapshot'),
      });
    }
    this.events = new EventLog({ file: config.eventsFile });
    this.peers = new PeerSet(config.peers, () => this.address);
    this.tracker = new LagTracker({
      nodeId: config.id,
      topic: config.topic,
      partitions: config.partitions,
      selfGroup: this.groupId,
      kafka,
      monitor: this.monitor,
      store: this.store,
      events: this.events,
      peers: this.peers,
      selfUrl: () => this.advertisedUrl(),
      // Peers share LAGOON_API_TOKENS: their /v1/digest is asked with one of its tokens that has `read`.
      peerToken: peerToken(config.apiTokens),
      replicaProgressAt: () => this.replica?.lastBatchAt ?? 0,
      outbox: () => this.outbox?.stats() ?? { records: 0, oldestSeconds: 0 },
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
    this.history = new LagHistory({ report: () => this.tracker.report(), events: () => this.events.list() });
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
        batchWriter: this.batchWriter,
        outbox: this.outbox,
        onBuffered: () => this.drainer?.kick(),
        writeGate: (p) => this.writeGate(p),
        monitor: this.monitor,
        watch: this.watch,
        freshness: this.freshness,
        sessionTag: topicTag(config.topic),
        replicaStatus: () => ({
          state: this.replica?.state ?? 'none',
          group: this.groupId,
          lastError: this.replica?.lastError,
          problem: this.replica?.problem,
          misrouted: this.replica?.status().misrouted,
        }),
        topicProblem: () => this.topicProblem,
        servingRefusal: (partitions) => this.servingRefusal(partitions),
        snapshots: this.snapshots,
        readiness: () => this.readiness(),
        stopping: () => this.stopping,
        logger: this.log,
        observe: {
          write: (op, result, s) => this.metrics.writes.observe({ op, result }, s),
          read: (consistency, result, s) => this.metrics.reads.observe({ consistency, result }, s),
        },
      },
      (app) => {
        // A node calling this one's /v1/digest or /v1/snapshot says who it is (after authentication, when on).
        app.addHook('onRequest', (req, _reply, done) => {
          const from = req.headers['lagoon-peer'];
          const route = req.routeOptions.url;
          if (
            typeof from === 'string' &&
            (route === '/v1/digest' || route === '/v1/snapshot') &&
            this.peers.learn(from)
          ) {
            this.logNode('peer_learned', { peer: from });
          }
          done();
        });
        lagRoutes(app, this.tracker, this.events, this.history);
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
    node.drainer?.start();
    node.events.start();
    node.tracker.start();
    node.history.start();
    node.heartbeats?.start();
    node.address = await node.api.listen({ host: config.host, port: config.port });
    node.connectLoop = node.connectKafka();
    node.state = 'running';
    node.logNode('listening', {
      address: node.address,
      role: config.role,
      topic: config.topic,
      partitions: config.partitions,
      brokers: config.kafka.brokers,
    });
    return node;
  }

  /** /readyz's verdict: serves reads at every level and takes writes (see src/core/readiness.ts). */
  readiness(): Readiness {
    const r = this.replica;
    return readiness({
      stopping: this.stopping,
      hasReplica: r !== undefined,
      replicaState: r?.state ?? 'none',
      replicaProblem: r?.problem,
      replicaLastError: r?.lastError,
      topicProblem: this.topicProblem,
      bootstrapping: this.bootstrapping,
      gaps: this.gapSummary(),
      catchingUp: this.caughtUpAt > 0 ? undefined : this.catchUpGap(),
    });
  }

  private gapSummary(): string | undefined {
    const gaps = this.replica?.gaps() ?? [];
    if (gaps.length === 0) return undefined;
    return gaps.map((g) => `partition ${g.partition}: ${deletedRange(g.from, g.logStart)}`).join('; ');
  }

  private catchUpGap(): string | undefined {
    const r = this.replica;
    if (!r) return undefined;
    this.catchUpTarget = latchTarget(this.catchUpTarget, this.monitor.snapshot().partitions, r.joinedAt);
    return catchUpGap(this.config.partitions, this.catchUpTarget, this.appliedNow());
  }

  /** The replica worker (a new one after a rebuild: a closed replica does not start again). */
  private newReplica(): Replica {
    const config = this.config;
    return new Replica(this.kafka, this.store, {
      topic: config.topic,
      groupId: this.groupId,
      rawEndpoint: {
        brokers: config.kafka.brokers,
        ssl: config.kafka.ssl,
        sasl: config.kafka.sasl !== undefined,
      },
      onApplied: (partition, applied, records, lastTs) => {
        this.watch.notify(partition, applied);
        this.tracker.observeRecord(partition, applied - 1, lastTs);
        this.freshness.observeApplied(partition, applied);
        this.metrics.applied.inc({ partition: String(partition) }, records);
        // Moving past transaction markers alone applies nothing: no replication latency to observe.
        if (records > 0) this.metrics.replication.observe(Math.max(0, Date.now() - lastTs) / 1000);
      },
      onGap: () => this.scheduleRebuild(1000),
      log: eventLogger(this.log, 'replica'),
      testApplyDelayMs: config.testApplyDelayMs,
      testApplyOffsetsFirst: config.testBreaks.includes('apply-offsets-first'),
    });
  }

  /** Why no snapshot of this replica may be taken now (it would not be a complete store), if so. */
  private snapshotUnfit(): string | undefined {
    if (this.bootstrapping !== undefined) return this.bootstrapping;
    const r = this.replica;
    if (!r) return 'this node has no replica';
    if (r.problem) return r.problem.message;
    const gaps = r.gaps();
    if (gaps.length > 0) return `partition(s) ${gaps.map((g) => g.partition).join(', ')} have a gap`;
    if (r.state !== 'running') return `the replica is ${r.state}`;
    return undefined;
  }

  /** What the API refuses to serve (src/api/read-levels.ts): everything while bootstrapping, gapped partitions. */
  private servingRefusal(partitions: number[]): LagoonError | undefined {
    if (this.replica && this.emptyAtStart && !this.logChecked && this.bootstrapping === undefined) {
      return new LagoonError(
        'replica_bootstrapping',
        'This replica starts empty and has not yet compared itself with the log (is Kafka reachable?): it serves nothing until then',
        { status: 503, retryable: true },
      );
    }
    if (this.bootstrapping !== undefined) {
      return new LagoonError(
        'replica_bootstrapping',
        `This replica is being rebuilt: ${this.bootstrapping}`,
        {
          status: 503,
          retryable: true,
        },
      );
    }
    const gaps = this.replica?.gaps() ?? [];
    const hit = gaps.filter((g) => partitions.includes(g.partition));
    if (hit.length === 0) return undefined;
    return new LagoonError(
      'replica_gap',
      `${hit.map((g) => `Partition ${g.partition}: ${deletedRange(g.from, g.logStart)}`).join('; ')}. This replica serves nothing from them until it is rebuilt from a peer's snapshot${this.config.peers.length === 0 ? ' (this node has no --peers)' : ''}. Read from another node.`,
      { status: 503, retryable: true, details: { partitions: hit.map((g) => g.partition) } },
    );
  }

  /**
   * Before the replica starts: rebuild from a peer's snapshot when the store is empty, when told to
   * (--bootstrap), or when the log no longer holds what the store needs next (a gap) — if it has peers. A gap
   * that remains is handed to the replica (those partitions are neither fetched nor served: GAP) and retried
   * every 30 s with peers. Without a usable snapshot an empty store replays the log from its start.
   */
  private async prepareReplica(logStart: ReadonlyMap<number, number>): Promise<void> {
    if (!this.replica) return;
    const gapsNow = () => {
      const applied = this.store.appliedOffsets();
      return [...logStart]
        .filter(([p, start]) => (applied.get(p) ?? 0) < start)
        .map(([partition, start]) => ({ partition, from: applied.get(partition) ?? 0, logStart: start }));
    };
    const empty = this.store.isEmpty();
    if (this.config.peers.length > 0 && (empty || this.config.bootstrap || gapsNow().length > 0)) {
      const why =
        gapsNow().length > 0
          ? 'records it needs were deleted from the log'
          : empty
            ? 'its store is empty'
            : '--bootstrap';
      await this.rebuild(why, logStart);
    }
    const gaps = gapsNow();
    if (gaps.length > 0) {
      this.replica.markGaps(gaps);
      this.scheduleRebuild(30_000);
    }
    this.logChecked = true;
  }

  /** Installs a peer's snapshot (bootstrapping meanwhile); true if one was installed. */
  private async rebuild(why: string, logStart: ReadonlyMap<number, number>): Promise<boolean> {
    this.bootstrapping = `fetching a snapshot from a peer (${why})`;
    this.logNode('bootstrap_begun', { why, peers: this.config.peers });
    try {
      const installed = await bootstrapFromPeers(
        {
          store: this.store,
          partitions: this.config.partitions,
          topic: this.config.topic,
          topicId: this.store.topicIdentity()?.topicId ?? undefined,
          peers: this.config.peers,
          token: peerToken(this.config.apiTokens),
          selfUrl: this.advertisedUrl(),
          workDir: path.join(path.dirname(path.resolve(this.config.db)), 'bootstrap'),
          timeoutMs: 10 * 60_000,
          log: eventLogger(this.log, 'bootstrap'),
        },
        logStart,
      );
      if (!installed) {
        this.logNode('bootstrap_failed', { why, reason: 'no peer had a usable snapshot' });
        return false;
      }
      for (const [p, o] of this.store.appliedOffsets()) {
        this.watch.notify(p, o);
        this.freshness.observeApplied(p, o);
      }
      return true;
    } finally {
      this.bootstrapping = undefined;
    }
  }

  /**
   * A gap found while running: stop the replica, rebuild from a peer's snapshot, start a new replica from the
   * snapshot's offsets. Retried every 30 s while no peer has a usable snapshot (the gap stays reported).
   */
  private scheduleRebuild(inMs: number): void {
    if (this.rebuildTimer || this.stopping || this.config.peers.length === 0) return;
    this.rebuildTimer = setTimeout(async () => {
      if (this.stopping) return;
      let ok = false;
      try {
        const logStart = await this.logStartOffsets();
        const old = this.replica;
        this.bootstrapping = 'rebuilding after a gap';
        await old?.close();
        ok = await this.rebuild('records it needed were deleted from the log', logStart);
        if (!this.stopping) {
          this.replica = this.newReplica();
          this.caughtUpAt = 0;
          await this.replica.start();
        }
      } catch (e) {
        this.logNode('rebuild_failed', { error: (e as Error).message });
      } finally {
        this.bootstrapping = undefined;
        this.rebuildTimer = undefined;
      }
      if (!ok && (this.replica?.gaps().length ?? 0) > 0) this.scheduleRebuild(30_000);
    }, inMs);
    this.rebuildTimer.unref();
  }

  /** The log's first offset per partition (0 where nothing was ever deleted). */
  private async logStartOffsets(): Promise<Map<number, number>> {
    const a = this.kafka.admin();
    await a.connect();
    try {
      return await fetchLogStarts(a, this.config.topic);
    } finally {
      await a.disconnect().catch(() => {});
    }
  }

  /** The URL peers can reach this node at, or '' when it listens on every interface (no single address to give). */
  private advertisedUrl(): string {
    const host = new URL(this.address || 'http://0.0.0.0').hostname;
    return host === '0.0.0.0' || host === '[::]' || host === '::' ? '' : this.address;
  }

  /** Applied offsets as the replica last reported them (OffsetWatch, in memory: no SQLite query per refresh). */
  private appliedNow(): Map<number, number> {
    return new Map(Array.from({ length: this.config.partitions }, (_, p) => [p, this.watch.applied(p)]));
  }

  /** Shutting down or shut down: readiness false, new requests turned away, loops stop rescheduling. */
  private get stopping(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  /**
   * After each monitor refresh: logs what changed in Kafka as this node sees it (reachable, brokers, write gates),
   * and notes the moment the replica first caught up with the log (readiness; logged once).
   */
  private observeCluster(view: ClusterView): void {
    const facts: ClusterFacts = {
      reachable: view.reachable,
      brokers: [...view.brokers].sort((a, b) => a - b),
      // Unreachable, every gate is closed for that one reason (logged as kafka_unreachable): keep the last
      // per-partition picture, so reconnecting logs only what differs from before the outage.
      gates: view.reachable
        ? Array.from({ length: this.config.partitions }, (_, p) => this.monitor.writeGate(p))
        : (this.lastFacts?.gates ?? []),
    };
    for (const c of clusterChanges(this.lastFacts, facts)) this.logNode(c.event, c.fields);
    this.lastFacts = facts;
    if (this.caughtUpAt === 0 && this.replica?.state === 'running' && this.catchUpGap() === undefined) {
      this.caughtUpAt = Date.now();
      this.logNode('caught_up', {
        afterJoinMs: this.caughtUpAt - this.replica.joinedAt,
        applied: Object.fromEntries(this.appliedNow()),
      });
    }
  }

  /** Counts one client's Kafka requests by API (lagoon_kafka_requests_total); one child counter per API. */
  private countKafkaRequest(client: 'replica' | 'writer'): (apiKey: number) => void {
    const byKey = new Map<number, { inc(): void }>();
    return (apiKey) => {
      let c = byKey.get(apiKey);
      if (c === undefined) {
        c = this.metrics.kafkaRequests.labels(client, kafkaApiName(apiKey));
        byKey.set(apiKey, c);
      }
      c.inc();
    };
  }

  /**
   * Why partition `p` cannot take writes now: the topic first (a node whose partition count disagrees with the
   * topic's would put keys in other partitions than every other node, so it takes no writes at all until its
   * topic check passes), then Kafka (no broker reachable, ISR below min.insync.replicas).
   */
  private writeGate(p: number): GateRefusal | undefined {
    if (this.topicProblem !== undefined) return { code: 'topic_unsafe', reason: this.topicProblem };
    const closed = this.monitor.writeGate(p);
    return closed === undefined ? undefined : { code: 'kafka_unavailable', reason: closed };
  }

  get port(): number {
    return Number(new URL(this.address).port);
  }

  /** Resolves once the replica is consuming (tests use it; the API does not wait for it). */
  async replicaStarted(): Promise<void> {
    await this.connectLoop;
  }

  /**
   * Ordered, idempotent shutdown, each step logged: readiness false and new requests turned away at once; in-flight
   * requests answered (their writes acknowledged by Kafka or refused); the producer flushed; the replica's last
   * fetch applied and committed; SQLite closed. The CLI bounds the whole (shutdownTimeoutMs).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const began = Date.now();
      const step = async (name: string, work: () => unknown) => {
        const t = Date.now();
        try {
          await work();
        } catch (e) {
          this.logNode('shutdown_step_failed', { step: name, error: (e as Error).message });
        }
        this.logNode('shutdown_step', { step: name, ms: Date.now() - t });
      };
      this.state = 'stopping';
      this.logNode('shutdown_begun', {});
      clearTimeout(this.topicTimer);
      clearTimeout(this.rebuildTimer);
      this.snapshots?.close();
      await step('http_closed', () => this.api.close());
      await step('background_stopped', async () => {
        this.heartbeats?.close();
        this.history.close();
        await this.tracker.close();
        this.events.close();
      });
      // The drainer stops starting rounds; closing the Writer settles the ones in flight; then the outbox file.
      await step('producer_flushed', async () => {
        const drained = this.drainer?.close();
        await this.writer?.close();
        await this.batchWriter?.close();
        await drained;
        this.outbox?.close();
      });
      await step('replica_stopped', () => this.replica?.close());
      await step('monitor_stopped', () => this.monitor.close());
      await step('store_closed', () => {
        this.watch.close();
        this.store.close();
      });
      this.state = 'stopped';
      this.logNode('shutdown_done', { ms: Date.now() - began });
    })();
    return this.closing;
  }

  private topicSpec(): TopicSpec {
    return {
      topic: this.config.topic,
      partitions: this.config.partitions,
      replicationFactor: this.config.replicationFactor,
      minInsyncReplicas: this.config.minInsyncReplicas,
      maxValueBytes: this.config.maxValueBytes,
      retentionMs: this.config.retentionMs,
    };
  }

  /** One structured line per topic state change. */
  private setTopicProblem(problem: string | undefined): void {
    if (problem === this.topicProblem) return;
    this.topicProblem = problem;
    eventLogger(this.log, 'topic')(problem === undefined ? 'topic_ok' : 'topic_unsafe', {
      topic: this.config.topic,
      reason: problem ?? null,
    });
  }

  /**
   * Every role checks the topic (creating it if missing), then starts the replica if it has one. Until the
   * check passes the node takes no writes; an unsafe topic keeps it so, and is re-checked periodically.
   */
  private async connectKafka(): Promise<void> {
    const client = kafkaClient({
      brokers: this.config.kafka.brokers,
      clientId: `lagoon-${this.config.id}-admin`,
      ssl: this.config.kafka.ssl,
      ...(this.config.kafka.sasl ? { sasl: this.config.kafka.sasl } : {}),
    });
    let delay = 250;
    while (!this.stopping) {
      try {
        const a = client.admin();
        await a.connect();
        let logStart = new Map<number, number>();
        try {
          await ensureTopic(a, this.topicSpec());
          if (this.replica) logStart = await fetchLogStarts(a, this.config.topic);
        } finally {
          await a.disconnect().catch(() => {});
        }
        this.setTopicProblem(undefined);
        this.scheduleTopicCheck(client);
        if (this.replica) {
          await this.prepareReplica(logStart);
          await this.replica.start();
          this.snapshots?.start();
        }
        return;
      } catch (e) {
        if ((e as { code?: string }).code === 'unsafe_topic') {
          // Refuse to write to or consume an unsafe topic; the API keeps serving eventual reads from SQLite and
          // says why in /readyz and /v1/status. The periodic check starts the replica once it is fixed.
          this.setTopicProblem((e as Error).message);
          this.scheduleTopicCheck(client);
          return;
        }
        if (this.replica) this.replica.lastError = (e as Error).message;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /**
   * Re-checks the topic every few seconds without creating it: a topic deleted, recreated with another partition
   * count or made unsafe under a running node stops its writes; once safe again, writes resume (and a replica
   * that never started, starts). Unreachable Kafka is the monitor's business, not a topic problem.
   */
  private scheduleTopicCheck(client: ReturnType<typeof kafkaClient>, everyMs = 5000): void {
    clearTimeout(this.topicTimer);
    this.topicTimer = setTimeout(async () => {
      if (this.stopping) return;
      const a = client.admin();
      try {
        await a.connect();
        const problems = await verifyTopic(a, this.topicSpec());
        if (problems === 'missing')
          this.setTopicProblem(`topic '${this.config.topic}' does not exist (deleted?)`);
        else if (problems.length > 0)
          this.setTopicProblem(`Topic '${this.config.topic}' has unsafe settings: ${problems.join('; ')}`);
        else {
          this.setTopicProblem(undefined);
          const replica = this.replica;
          if (replica?.state === 'idle') {
            // A replica that never started (its topic was unsafe at first) starts now; a failed attempt is
            // retried next round.
            await replica.start().catch((e) => {
              if (replica.state === 'starting') replica.state = 'idle';
              throw e;
            });
          }
        }
      } catch {
        // Kafka unreachable or mid-change: keep the last verdict, try again next round.
      } finally {
        await a.disconnect().catch(() => {});
      }
      if (!this.stopping) this.scheduleTopicCheck(client, everyMs);
    }, everyMs);
    this.topicTimer.unref();
  }
}
