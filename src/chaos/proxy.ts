import net from 'node:net';
import type { LocalCluster } from '../cluster/local-cluster.js';
import { LagoonError } from '../errors.js';

/**
 * A TCP fault proxy on loopback, for the "slow or partitioned node" chaos scenarios (SPEC §6): one
 * proxy sits in front of each broker, the broker advertises the proxy's port, and a fault set on the
 * proxy applies at once to every connection through it, existing and new.
 *
 * Faults:
 * - `latency`: every chunk in each direction is held `ms ± jitterMs`; order within a direction is kept
 *   (a chunk never overtakes an earlier one, so jitter only ever adds delay, never reorders bytes).
 * - `blackhole`: a network partition. Connections stay open (and new ones are accepted) but nothing is
 *   forwarded in either direction, not even a close; bytes are dropped, not held. Healing forwards new
 *   bytes again, but the dropped ones stay dropped, so a connection that carried traffic during the
 *   blackhole is effectively broken (its peer waits for replies that never come) until the client's
 *   own timeout closes it, as after a real partition. Connections accepted during a blackhole are
 *   never connected upstream at all. A side that closed during the blackhole is reset at the heal.
 * - `reset`: every existing connection is reset (RST, the client sees ECONNRESET) and so is every new one.
 * - `bandwidth`: a token bucket per direction per connection.
 *
 * Backpressure: a direction pauses its source socket once too many bytes wait in it (delayed, throttled
 * or not yet drained by the destination), so a slow direction never buffers without bound.
 */

/** A network fault the proxy applies to every connection through it. */
export type ProxyFault =
  | { kind: 'none' }
  | { kind: 'latency'; ms: number; jitterMs?: number }
  | { kind: 'blackhole' }
  | { kind: 'reset' }
  | { kind: 'bandwidth'; bytesPerSec: number };

/** Where a FaultProxy listens and forwards to; both must be loopback. */
export interface FaultProxyOptions {
  listenHost?: string;
  /** 0 picks a free port (see `port`). */
  listenPort: number;
  targetHost: string;
  targetPort: number;
  /** For error messages. */
  name?: string;
}

/** Counters of one proxy: `connections` is open now, bytes are those forwarded (dropped ones apart). */
export interface ProxyStats {
  connections: number;
  accepted: number;
  bytesUp: number;
  bytesDown: number;
  bytesDropped: number;
  resets: number;
}

// Bytes waiting in one direction before its source is paused, and the level at which it resumes.
const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 << 10;

/** Whether `host` is a loopback name or address: localhost, ::1 or 127.0.0.0/8. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return net.isIPv4(h) && h.startsWith('127.');
}

function checkFault(f: ProxyFault): ProxyFault {
  const bad = (why: string) =>
    new LagoonError('bad_argument', `Invalid proxy fault ${JSON.stringify(f)}: ${why}`);
  switch (f.kind) {
    case 'latency':
      if (!(Number.isFinite(f.ms) && f.ms >= 0)) throw bad('ms must be a finite number >= 0');
      if (f.jitterMs !== undefined && !(Number.isFinite(f.jitterMs) && f.jitterMs >= 0)) {
        throw bad('jitterMs must be a finite number >= 0');
      }
      return { ...f };
    case 'bandwidth':
      // Zero would be a blackhole that still buffers; ask for a blackhole instead.
      if (!(Number.isFinite(f.bytesPerSec) && f.bytesPerSec > 0)) throw bad('bytesPerSec must be > 0');
      return { ...f };
    case 'none':
    case 'blackhole':
    case 'reset':
      return { ...f };
    default:
      throw bad('unknown kind');
  }
}

/** What a connection needs from its proxy. */
interface ProxyContext {
  fault(): ProxyFault;
  forwarded(up: boolean, n: number): void;
  dropped(n: number): void;
  remove(link: Link): void;
}

interface Chunk {
  data: Buffer;
  /** When a latency fault lets it go. */
  dueAt: number;
}

/** One direction of one connection: a FIFO of chunks released by the current fault. */
class Flow {
  private readonly queue: Chunk[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private pausedSource = false;
  private tokens = 0;
  private refilledAt = 0;
  private bucketRate = 0;
  /** The source sent FIN (or closed): once the queue is empty, the sink gets it. */
  sourceEnded = false;
  private finished = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly up: boolean,
    private readonly source: () => net.Socket | undefined,
    private readonly sink: () => net.Socket | undefined,
    /** Called once the source ended and everything queued went out. */
    private readonly onFinished: () => void,
  ) {}

  onData(data: Buffer): void {
    const f = this.ctx.fault();
    if (f.kind === 'blackhole' || f.kind === 'reset' || this.finished) {
      this.ctx.dropped(data.length);
      return;
    }
    const delay = f.kind === 'latency' ? Math.max(0, f.ms + (Math.random() * 2 - 1) * (f.jitterMs ?? 0)) : 0;
    this.queue.push({ data, dueAt: Date.now() + delay });
    this.queuedBytes += data.length;
    if (this.queuedBytes >= HIGH_WATER && !this.pausedSource) {
      this.pausedSource = true;
      this.source()?.pause();
    }
    // A pending timer or drain will pump; the head of the queue has not changed.
    if (this.timer === undefined && !this.waitingDrain) this.pump();
  }

  onEnd(): void {
    this.sourceEnded = true;
    if (this.ctx.fault().kind !== 'blackhole') this.pump();
  }

  /** Re-evaluates the queue under the current fault (called when the fault changes). */
  kick(): void {
    this.clearTimer();
    this.pump();
  }

  /** Drops what waits and stops for good (the sink is gone). */
  discard(): void {
    this.clearTimer();
    this.dropQueue();
    this.finished = true;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.pump();
      },
      Math.max(1, Math.ceil(ms)),
    );
  }

  private dropQueue(): void {
    if (this.queuedBytes > 0) this.ctx.dropped(this.queuedBytes);
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.resumeSourceIfLow();
  }

  private resumeSourceIfLow(): void {
    if (this.pausedSource && this.queuedBytes <= LOW_WATER) {
      this.pausedSource = false;
      this.source()?.resume();
    }
  }

  private pump(): void {
    if (this.finished) return;
    const f = this.ctx.fault();
    if (f.kind === 'blackhole' || f.kind === 'reset') {
      // A partition drops bytes in flight too; an end waits for the heal (a partition carries no FIN).
      this.dropQueue();
      return;
    }
    if (this.waitingDrain) return;
    const sink = this.sink();
    if (sink === undefined || sink.destroyed || sink.connecting) return; // pumped again on connect
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const now = Date.now();
      // Delays only count while the latency fault lasts: a heal releases held chunks at once.
      if (f.kind === 'latency' && head.dueAt > now) {
        this.schedule(head.dueAt - now);
        return;
      }
      let piece = head.data;
      if (f.kind === 'bandwidth') {
        const rate = f.bytesPerSec;
        // A burst of 100 ms worth keeps timers coarse without letting a big chunk through at once.
        const burst = Math.max(1, Math.floor(rate / 10));
        if (this.bucketRate !== rate) {
          this.bucketRate = rate;
          this.tokens = burst;
          this.refilledAt = now;
        }
        this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * rate);
        this.refilledAt = now;
        const want = Math.min(piece.length, burst);
        if (this.tokens < want) {
          this.schedule(((want - this.tokens) / rate) * 1000);
          return;
        }
        const n = Math.min(piece.length, Math.floor(this.tokens));
        this.tokens -= n;
        if (n < piece.length) {
          head.data = piece.subarray(n);
          piece = piece.subarray(0, n);
        } else {
          this.queue.shift();
        }
      } else {
        this.bucketRate = 0;
        this.queue.shift();
      }
      this.queuedBytes -= piece.length;
      this.ctx.forwarded(this.up, piece.length);
      if (!sink.write(piece)) {
        this.waitingDrain = true;
        sink.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        break;
      }
    }
    this.resumeSourceIfLow();
    if (this.queue.length === 0 && this.sourceEnded && !this.waitingDrain) {
      this.finished = true;
      this.onFinished();
    }
  }
}

/** One client connection and its upstream connection. */
class Link {
  upstream: net.Socket | undefined;
  readonly up: Flow;
  readonly down: Flow;
  /** A socket closed while the network was blackholed; the other side learns it at the heal. */
  private closedDuringBlackhole = false;
  private gone = false;

  constructor(
    private readonly ctx: ProxyContext,
    readonly client: net.Socket,
  ) {
    this.up = new Flow(
      ctx,
      true,
      () => this.client,
      () => this.upstream,
      () => this.finishTowards(this.upstream, this.client),
    );
    this.down = new Flow(
      ctx,
      false,
      () => this.upstream,
      () => this.client,
      () => this.finishTowards(this.client, this.upstream),
    );
    this.wire(client, this.up, this.down);
  }

  connect(host: string, port: number): void {
    const s = net.connect({ host, port, allowHalfOpen: true });
    this.upstream = s;
    s.setNoDelay(true);
    s.once('connect', () => this.up.kick());
    this.wire(s, this.down, this.up);
  }

  /** RST both sides: the client sees ECONNRESET. */
  reset(): void {
    this.tearDown(true);
  }

  destroy(): void {
    this.tearDown(false);
  }

  /** The fault changed: re-pump both directions; a side that closed during a blackhole is now noticed. */
  kick(): void {
    if (this.gone) return;
    if (this.closedDuringBlackhole && this.ctx.fault().kind !== 'blackhole') {
      // The peer's next packet after a healed partition meets a connection the other end forgot: RST.
      this.reset();
      return;
    }
    this.up.kick();
    this.down.kick();
  }

  /** Wires a socket as the source of `from` and the sink of `to`. */
  private wire(s: net.Socket, from: Flow, to: Flow): void {
    s.on('data', (d: Buffer) => from.onData(d));
    s.on('end', () => from.onEnd());
    s.on('error', (e: NodeJS.ErrnoException) => {
      // The error is followed by 'close'. A reset from one side is passed on as a reset, and so is a
      // refused upstream connection (the client was already accepted; a reset is the nearest signal).
      if (this.ctx.fault().kind === 'blackhole') return;
      if (e.code === 'ECONNRESET' || (s === this.upstream && e.code === 'ECONNREFUSED')) this.reset();
    });
    s.on('close', () => {
      if (this.gone) return;
      if (this.client.destroyed && (this.upstream === undefined || this.upstream.destroyed)) {
        this.forget();
        return;
      }
      if (this.ctx.fault().kind === 'blackhole') {
        this.closedDuringBlackhole = true;
        return;
      }
      // Nothing more can be written to `s`; what `s` sent before closing still goes out, then the other
      // side is closed too (see finishTowards).
      to.discard();
      from.sourceEnded = true;
      from.kick();
    });
  }

  /** `from` ended and everything it sent went out: half-close `to`, or close it if `from` is gone. */
  private finishTowards(to: net.Socket | undefined, from: net.Socket | undefined): void {
    if (to === undefined || to.destroyed) {
      this.destroy();
      return;
    }
    if (from === undefined || from.destroyed) to.destroySoon();
    else to.end();
  }

  private tearDown(rst: boolean): void {
    if (this.gone) return;
    this.forget();
    this.up.discard();
    this.down.discard();
    for (const s of [this.client, this.upstream]) {
      if (s === undefined || s.destroyed) continue;
      if (rst && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
  }

  private forget(): void {
    if (this.gone) return;
    this.gone = true;
    this.ctx.remove(this);
  }
}

/** A TCP proxy on loopback whose fault (latency, blackhole, reset, bandwidth) can be changed at any time. */
export class FaultProxy {
  private readonly opts: Required<FaultProxyOptions>;
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private current: ProxyFault = { kind: 'none' };
  private closing: Promise<void> | undefined;
  private readonly counters = { accepted: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0, resets: 0 };
  private readonly ctx: ProxyContext;

  constructor(opts: FaultProxyOptions) {
    const listenHost = opts.listenHost ?? '127.0.0.1';
    const name = opts.name ?? `proxy ${listenHost}:${opts.listenPort}→${opts.targetHost}:${opts.targetPort}`;
    // A fault proxy on a reachable interface would let anyone cut or slow the cluster; loopback only.
    for (const [what, host] of [
      ['listen', listenHost],
      ['target', opts.targetHost],
    ] as const) {
      if (!isLoopbackHost(host)) {
        throw new LagoonError(
          'bad_argument',
          `${name}: ${what} host ${host} is not loopback; the fault proxy only runs on 127.0.0.0/8, ::1 or localhost`,
        );
      }
    }
    this.opts = { ...opts, listenHost, name };
    this.ctx = {
      fault: () => this.current,
      forwarded: (up, n) => {
        if (up) this.counters.bytesUp += n;
        else this.counters.bytesDown += n;
      },
      dropped: (n) => {
        this.counters.bytesDropped += n;
      },
      remove: (link) => {
        this.links.delete(link);
      },
    };
  }

  /** Starts listening; rejects if the port is taken. */
  start(): Promise<void> {
    if (this.closing) return Promise.reject(new LagoonError('proxy_closed', `${this.opts.name} is closed`));
    if (this.server) return Promise.resolve();
    const server = net.createServer({ allowHalfOpen: true }, (c) => this.accept(c));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        this.server = undefined;
        reject(
          new LagoonError(
            e.code === 'EADDRINUSE' ? 'port_in_use' : 'proxy_failed',
            `${this.opts.name}: cannot listen on ${this.opts.listenHost}:${this.opts.listenPort}: ${e.message}`,
            { cause: e },
          ),
        );
      };
      server.once('error', onError);
      server.listen(this.opts.listenPort, this.opts.listenHost, () => {
        server.off('error', onError);
        // Accept errors after listening (EMFILE…) must not crash the process.
        server.on('error', () => {});
        resolve();
      });
    });
  }

  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const l of [...this.links]) l.destroy();
      this.links.clear();
      const server = this.server;
      if (!server?.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
    });
    return this.closing;
  }

  /** The port it listens on (the one picked when listenPort was 0). */
  get port(): number {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : this.opts.listenPort;
  }

  /** Where clients connect, host:port. */
  get address(): string {
    return `${this.opts.listenHost}:${this.port}`;
  }

  /** Applies `f` to every connection, existing and new; `{kind: 'none'}` heals. */
  setFault(f: ProxyFault): void {
    this.current = checkFault(f);
    const links = [...this.links];
    if (this.current.kind === 'reset') {
      this.counters.resets += links.length;
      for (const l of links) l.reset();
      return;
    }
    for (const l of links) l.kick();
  }

  /** The fault in force. */
  fault(): ProxyFault {
    return { ...this.current };
  }

  /** Counters since start. */
  stats(): ProxyStats {
    return { connections: this.links.size, ...this.counters };
  }

  private accept(client: net.Socket): void {
    if (this.closing) {
      client.destroy();
      return;
    }
    this.counters.accepted++;
    client.on('error', () => {}); // handled per link; a reset client must not crash the process
    if (this.current.kind === 'reset') {
      this.counters.resets++;
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const link = new Link(this.ctx, client);
    this.links.add(link);
    // A partitioned network never completes the connection upstream.
    if (this.current.kind === 'blackhole') return;
    link.connect(this.opts.targetHost, this.opts.targetPort);
  }
}

/**
 * Starts one FaultProxy per broker of a proxied cluster (proxyPort → the broker's real port), keyed by
 * broker id. Start them before `cluster.start()`: the brokers replicate through them.
 */
export async function startProxies(cluster: LocalCluster): Promise<Map<number, FaultProxy>> {
  if (!cluster.proxied) {
    throw new LagoonError(
      'bad_argument',
      `The cluster in ${cluster.layout.dataDir} is not proxied (create it with proxied: true)`,
    );
  }
  const proxies = new Map<number, FaultProxy>();
  try {
    for (const b of cluster.layout.brokers) {
      const p = new FaultProxy({
        listenPort: b.proxyPort,
        targetHost: '127.0.0.1',
        targetPort: b.port,
        name: `proxy of broker ${b.id}`,
      });
      proxies.set(b.id, p);
      await p.start();
    }
  } catch (e) {
    await Promise.all([...proxies.values()].map((p) => p.close()));
    throw e;
  }
  return proxies;
}
