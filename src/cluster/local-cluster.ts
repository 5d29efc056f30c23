import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { EVENTS_FILE, type LagoonEvent } from '../core/events.js';
import { LagoonError } from '../errors.js';
import { ensureKafkaJars, type KafkaJars, type Progress } from './jars.js';
import { type BrokerLayout, bootstrapOf, type ClusterLayout, clusterLayout, clusterPorts } from './layout.js';
import {
  isProcessOf,
  type ProcState,
  procState,
  readPid,
  rssBytes,
  signal,
  sleep,
  terminate,
  waitExit,
} from './process.js';
import { brokerProperties, log4jConfig } from './properties.js';

const WATCHDOG = path.join(path.dirname(fileURLToPath(import.meta.url)), 'watchdog.mjs');

/** What `cluster.json` in the data dir records, so every later command finds the same cluster. */
interface ClusterState {
  clusterId: string;
  brokers: number;
  basePort: number;
  kafkaVersion: string;
  createdAt: string;
  /** Brokers advertise their fault proxies (absent in files written before proxied mode: false). */
  proxied?: boolean;
}

export interface BrokerStatus {
  id: number;
  address: string;
  pid: number | undefined;
  state: 'up' | 'down' | 'paused';
  rssBytes: number | undefined;
}

export interface LocalClusterOptions {
  dataDir: string;
  /** Brokers in a new cluster (3 or 1). Ignored when the data dir already holds a cluster. */
  brokers?: number;
  /** First PLAINTEXT port; see layout.ts for the scheme. Ignored when the data dir already holds a cluster. */
  basePort?: number;
  /**
   * Brokers advertise a fault proxy's port (layout.ts: base+200+i-1) instead of their own, so every client
   * and inter-broker replication goes through it; start the proxies with startProxies (src/chaos/proxy.ts)
   * before the cluster. Ignored when the data dir already holds a cluster.
   */
  proxied?: boolean;
  /** Heap per broker JVM. */
  heap?: string;
  progress?: Progress;
}

/**
 * A local KRaft cluster of combined broker+controller JVMs, run from the official jars.
 * All state (ids, ports, pids, logs, data) lives under `<dataDir>/kafka`, so any process pointed at the
 * same data dir controls the same cluster.
 */
export class LocalCluster {
  readonly layout: ClusterLayout;
  private readonly state: ClusterState;
  private readonly heap: string;
  private readonly progress: Progress;
  private jars: KafkaJars | undefined;

  private constructor(layout: ClusterLayout, state: ClusterState, opts: LocalClusterOptions) {
    this.layout = layout;
    this.state = state;
    this.heap = opts.heap ?? '768m';
    this.progress = opts.progress ?? (() => {});
  }

  /** Opens the cluster recorded in the data dir, or lays out a new one (nothing is started). */
  static open(opts: LocalClusterOptions): LocalCluster {
    const probe = clusterLayout(opts.dataDir, 1, 0);
    let state: ClusterState;
    if (fs.existsSync(probe.stateFile)) {
      state = JSON.parse(fs.readFileSync(probe.stateFile, 'utf8')) as ClusterState;
      if (opts.brokers !== undefined && opts.brokers !== state.brokers) {
        throw new LagoonError(
          'cluster_mismatch',
          `${probe.kafkaDir} holds a ${state.brokers}-broker cluster, not ${opts.brokers}. ` +
            'Stop it and remove that directory, or use another --data-dir.',
        );
      }
      if (opts.proxied !== undefined && opts.proxied !== (state.proxied ?? false)) {
        throw new LagoonError(
          'cluster_mismatch',
          `${probe.kafkaDir} holds a ${state.proxied ? '' : 'non-'}proxied cluster. ` +
            'Stop it and remove that directory, or use another --data-dir.',
        );
      }
    } else {
      const brokers = opts.brokers ?? 3;
      if (brokers !== 1 && brokers !== 3) {
        throw new LagoonError('bad_argument', `--brokers must be 1 or 3, got ${brokers}`);
      }
      state = {
        clusterId: newClusterId(),
        brokers,
        basePort: opts.basePort ?? 29092,
        kafkaVersion: '',
        createdAt: new Date().toISOString(),
        // Only recorded when set, so a default cluster.json stays as it was.
        ...(opts.proxied ? { proxied: true } : {}),
      };
    }
    return new LocalCluster(
      clusterLayout(opts.dataDir, state.brokers, state.basePort, state.proxied ?? false),
      state,
      opts,
    );
  }

  /** Whether the data dir already records a cluster. */
  static exists(dataDir: string): boolean {
    return fs.existsSync(clusterLayout(dataDir, 1, 0).stateFile);
  }

  /** What clients bootstrap from: the brokers, or in a proxied cluster their proxies. */
  get bootstrap(): string[] {
    return bootstrapOf(this.layout);
  }

  /** Whether brokers advertise their fault proxies (see LocalClusterOptions.proxied). */
  get proxied(): boolean {
    return this.layout.proxied;
  }

  get brokerCount(): number {
    return this.layout.brokers.length;
  }

  broker(id: number): BrokerLayout {
    const b = this.layout.brokers.find((x) => x.id === id);
    if (!b) {
      throw new LagoonError(
        'bad_argument',
        `No broker ${id}: this cluster has brokers 1..${this.brokerCount}`,
      );
    }
    return b;
  }

  /** Pid of a running (or paused) broker, cleaning up a stale pid file left by a crash. */
  pidOf(id: number): number | undefined {
    const b = this.broker(id);
    const pid = readPid(b.pidFile);
    if (pid === undefined) return undefined;
    if (isProcessOf(pid, b.propsFile)) return pid;
    fs.rmSync(b.pidFile, { force: true });
    return undefined;
  }

  /**
   * Starts every broker that is not running and waits until all are registered and metadata answers.
   * `owner`: a pid whose death must take the brokers down with it (a test run, `lagoon up`).
   */
  async start(opts: { owner?: number; timeoutMs?: number } = {}): Promise<void> {
    await this.prepare();
    const started = Date.now();
    await Promise.all(this.layout.brokers.map((b) => this.spawnBroker(b)));
    if (opts.owner !== undefined) this.startWatchdog(opts.owner);
    await this.waitReady(
      this.layout.brokers.map((b) => b.id),
      opts.timeoutMs ?? 90_000,
    );
    this.progress(
      `Kafka ready: ${this.brokerCount} broker(s) at ${this.bootstrap.join(',')} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }

  /** Starts one broker (no-op if it runs) and waits until it has registered with the cluster. */
  async startBroker(id: number, timeoutMs = 60_000): Promise<void> {
    await this.prepare();
    if (this.pidOf(id) === undefined) this.event('broker_start', id, 'started');
    await this.spawnBroker(this.broker(id));
    await this.waitReady([id], timeoutMs);
  }

  /** SIGTERM (controlled shutdown), bounded wait, then SIGKILL. */
  async stopBroker(id: number, graceMs = 15_000): Promise<'clean' | 'killed' | 'gone'> {
    const pid = this.pidOf(id);
    if (pid === undefined) return 'gone';
    this.event('broker_stop', id, 'SIGTERM (controlled shutdown)');
    const how = await terminate(pid, graceMs);
    fs.rmSync(this.broker(id).pidFile, { force: true });
    return how;
  }

  /** SIGKILL: the crash fault. */
  async killBroker(id: number): Promise<void> {
    const pid = this.pidOf(id);
    if (pid === undefined) return;
    this.event('broker_kill', id, 'SIGKILL');
    signal(pid, 'SIGKILL');
    await waitExit(pid, 10_000);
    fs.rmSync(this.broker(id).pidFile, { force: true });
  }

  /** SIGSTOP: the broker is alive but silent (a GC pause, a hung disk). */
  pauseBroker(id: number): void {
    const pid = this.requirePid(id);
    this.event('broker_pause', id, 'SIGSTOP');
    signal(pid, 'SIGSTOP');
  }

  resumeBroker(id: number): void {
    const pid = this.requirePid(id);
    this.event('broker_resume', id, 'SIGCONT');
    signal(pid, 'SIGCONT');
  }

  /**
   * Stops every broker at once. They are signalled together because a controlled shutdown one by one
   * stalls once the quorum is gone; whatever does not exit in time is killed.
   */
  async stop(graceMs = 15_000): Promise<void> {
    fs.rmSync(this.layout.watchdogPidFile, { force: true });
    await Promise.all(this.layout.brokers.map((b) => this.stopBroker(b.id, graceMs)));
  }

  status(): BrokerStatus[] {
    return this.layout.brokers.map((b) => {
      const pid = this.pidOf(b.id);
      const st: ProcState = pid === undefined ? 'dead' : procState(pid);
      return {
        id: b.id,
        address: `127.0.0.1:${b.port}`,
        pid,
        state: st === 'running' ? 'up' : st === 'paused' ? 'paused' : 'down',
        rssBytes: pid === undefined ? undefined : rssBytes(pid),
      };
    });
  }

  /** Kafka's own tools, run on the separate tools classpath. Resolves with stdout; rejects on failure. */
  async tool(mainClass: string, args: string[], timeoutMs = 60_000): Promise<string> {
    const jars = await this.ensureJars();
    return runJava(['-cp', jars.toolsClasspath, mainClass, ...args], timeoutMs);
  }

  /**
   * Like {@link tool}, and also the CPU time (user + system, ms) the tool's JVM used, read from bash's
   * `times` after the JVM exited — exact, without sampling (for the bench's CPU-per-record anchor).
   */
  async toolTimed(
    mainClass: string,
    args: string[],
    timeoutMs = 60_000,
  ): Promise<{ out: string; cpuMs: number }> {
    const jars = await this.ensureJars();
    const script = '"$0" "$@"; code=$?; times >&2; exit $code';
    const out = await runCommand(
      'bash',
      ['-c', script, javaBin(), '-cp', jars.toolsClasspath, mainClass, ...args],
      timeoutMs,
      true,
    );
    return out;
  }

  /** The active KRaft controller's id, from Kafka's MetadataQuorumCommand (undefined if no quorum). */
  async activeController(): Promise<number | undefined> {
    const live = this.layout.brokers.filter((b) => this.status().find((s) => s.id === b.id)?.state === 'up');
    if (live.length === 0) return undefined;
    try {
      const out = await this.tool(
        'org.apache.kafka.tools.MetadataQuorumCommand',
        [
          '--bootstrap-controller',
          live.map((b) => `127.0.0.1:${b.controllerPort}`).join(','),
          'describe',
          '--status',
        ],
        20_000,
      );
      const m = /LeaderId:\s+(-?\d+)/.exec(out);
      const id = m ? Number(m[1]) : -1;
      return id >= 0 ? id : undefined;
    } catch {
      return undefined;
    }
  }

  /** Waits until each id in `ids` is a registered, unfenced broker in the cluster metadata. */
  async waitReady(ids: number[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no answer yet';
    while (Date.now() < deadline) {
      for (const id of ids) {
        if (this.pidOf(id) === undefined) {
          throw new LagoonError(
            'broker_exited',
            `Broker ${id} exited during start-up. Last lines of ${this.broker(id).serverLog}:\n${this.logTail(id)}`,
          );
        }
      }
      // Ask each starting broker itself (not the cluster): a restarted broker's old registration can
      // linger in the others' metadata until its session times out, so only its own answer proves it is up.
      const answers = await Promise.all(ids.map((id) => this.registeredVia(id)));
      const missing = answers.flatMap((seen, i) =>
        typeof seen === 'string'
          ? [`${ids[i]}: ${seen}`]
          : ids.filter((x) => !seen.has(x)).map((x) => `${x} not registered`),
      );
      if (missing.length === 0) return;
      lastError = missing.join('; ');
      await sleep(250);
    }
    throw new LagoonError(
      'kafka_not_ready',
      `Kafka brokers [${ids.join(',')}] not ready after ${timeoutMs} ms (${lastError}). See logs under ${this.layout.kafkaDir}.`,
      { retryable: true },
    );
  }

  /** The broker ids registered in the metadata as broker `id` sees it, or why it did not answer. */
  private async registeredVia(id: number): Promise<Set<number> | string> {
    const kafka = new Kafka({
      clientId: 'lagoon-cluster-probe',
      brokers: [`127.0.0.1:${this.broker(id).port}`],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1000,
      requestTimeout: 3000,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      const desc = await admin.describeCluster();
      return new Set(desc.brokers.map((b) => b.nodeId));
    } catch (e) {
      return (e as Error).message;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  logTail(id: number, lines = 20): string {
    const b = this.broker(id);
    const read = (f: string) => {
      try {
        return fs.readFileSync(f, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    };
    return `${read(b.serverLog)}\n${read(b.stdoutLog)}`.trim();
  }

  /** Fault events go to the data dir's events file, where the nodes' dashboards pick them up. */
  private event(kind: string, broker: number, message: string): void {
    const e: LagoonEvent = {
      at: Date.now(),
      kind,
      target: `broker-${broker}`,
      message,
      source: 'lagoon-cluster',
    };
    try {
      fs.mkdirSync(this.layout.dataDir, { recursive: true });
      fs.appendFileSync(path.join(this.layout.dataDir, EVENTS_FILE), `${JSON.stringify(e)}\n`);
    } catch {
      // events are best effort; the fault itself must not fail because of them
    }
  }

  private requirePid(id: number): number {
    const pid = this.pidOf(id);
    if (pid === undefined) throw new LagoonError('broker_down', `Broker ${id} is not running`);
    return pid;
  }

  private async ensureJars(): Promise<KafkaJars> {
    this.jars ??= await ensureKafkaJars(this.progress);
    return this.jars;
  }

  /** Fetches the jars, writes configs, and formats storage of brokers that were never formatted. */
  private async prepare(): Promise<void> {
    const jars = await this.ensureJars();
    fs.mkdirSync(this.layout.kafkaDir, { recursive: true });
    if (!fs.existsSync(this.layout.stateFile)) {
      await this.checkPortsFree();
      this.state.kafkaVersion = jars.version;
      fs.writeFileSync(this.layout.stateFile, `${JSON.stringify(this.state, null, 2)}\n`);
    }
    await Promise.all(
      this.layout.brokers.map(async (b) => {
        fs.mkdirSync(path.dirname(b.serverLog), { recursive: true });
        fs.writeFileSync(b.propsFile, brokerProperties(this.layout, b, os.availableParallelism()));
        fs.writeFileSync(b.log4jFile, log4jConfig(b));
        if (!fs.existsSync(path.join(b.logDir, 'meta.properties'))) {
          await runJava(
            [
              '-cp',
              jars.brokerClasspath,
              `-Dlog4j2.configurationFile=${b.log4jFile}`,
              'kafka.tools.StorageTool',
              'format',
              '-t',
              this.state.clusterId,
              '-c',
              b.propsFile,
            ],
            60_000,
          );
        }
      }),
    );
  }

  private async checkPortsFree(): Promise<void> {
    for (const port of clusterPorts(this.layout)) {
      if (!(await portFree(port))) {
        throw new LagoonError(
          'port_in_use',
          `Port ${port} on 127.0.0.1 is taken. Another Lagoon cluster may be running with another data dir; ` +
            'stop it, or choose other ports (--kafka-port).',
        );
      }
    }
  }

  private async spawnBroker(b: BrokerLayout): Promise<void> {
    if (this.pidOf(b.id) !== undefined) return;
    const jars = await this.ensureJars();
    const out = fs.openSync(b.stdoutLog, 'a');
    const child = spawn(
      javaBin(),
      [
        `-Xms256m`,
        `-Xmx${this.heap}`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${b.log4jFile}`,
        `-Dkafka.logs.dir=${path.dirname(b.serverLog)}`,
        '-cp',
        jars.brokerClasspath,
        'kafka.Kafka',
        b.propsFile,
      ],
      { detached: true, stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    if (child.pid === undefined)
      throw new LagoonError('broker_spawn_failed', `Could not start broker ${b.id}`);
    fs.writeFileSync(b.pidFile, `${child.pid}\n`);
    child.unref();
  }

  private startWatchdog(owner: number): void {
    const child = spawn(process.execPath, [WATCHDOG, String(owner), this.layout.kafkaDir], {
      detached: true,
      stdio: 'ignore',
    });
    if (child.pid !== undefined) fs.writeFileSync(this.layout.watchdogPidFile, `${child.pid}\n`);
    child.unref();
  }
}

/**
 * A random KRaft cluster id (16 bytes, base64url). Like Kafka's own Uuid.randomUuid, ids starting with
 * '-' are avoided: the storage tool would read one as a command-line flag.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function javaBin(): string {
  const home = process.env.JAVA_HOME;
  return home ? path.join(home, 'bin', 'java') : 'java';
}

function runJava(args: string[], timeoutMs: number): Promise<string> {
  return runCommand(javaBin(), args, timeoutMs, false).then((r) => r.out);
}

/** Children's CPU ms from the last line of bash's `times` ("0m1.234s 0m0.120s"). */
function childrenCpuMs(stderr: string): number {
  const lines = stderr.trim().split('\n');
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s\s*$/.exec(lines[lines.length - 1] ?? '');
  if (!m) return Number.NaN;
  return Math.round((Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000);
}

function runCommand(
  cmd: string,
  args: string[],
  timeoutMs: number,
  timed: boolean,
): Promise<{ out: string; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        new LagoonError('java_missing', `Could not run java: ${e.message}. Install a JDK 17+.`, { cause: e }),
      );
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ out, cpuMs: timed ? childrenCpuMs(err) : Number.NaN });
      else
        reject(
          new LagoonError('java_failed', `java ${args.slice(-4).join(' ')} exited ${code}: ${err || out}`),
        );
    });
  });
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A base port whose whole range (base..base+n-1, base+100.., and the proxy ports base+200..) is free: for
 * tests run side by side. The proxy ports are checked even for a plain cluster, so one base fits both.
 * The range lies below Linux's ephemeral ports (32768–60999 by default): a port found free there could be taken
 * as the local port of any outgoing connection before the broker binds it ("Address already in use" at start-up,
 * seen now and then). Test nodes use 20000 and up.
 */
export async function findFreeBasePort(brokers: number, lo = 10000, hi = 19500): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lo + Math.floor(Math.random() * (hi - lo));
    const ports: number[] = [];
    for (let i = 0; i < brokers; i++) ports.push(base + i, base + 100 + i, base + 200 + i);
    const free = await Promise.all(ports.map(portFree));
    if (free.every(Boolean)) return base;
  }
  throw new LagoonError('port_in_use', 'Found no free port range for a local Kafka cluster');
}
