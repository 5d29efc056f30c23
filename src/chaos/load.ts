import { decodeSession } from '../core/session.js';
import type { Consistency, HistoryOp, NodeFinal, Outcome, ReadOp, WriteOp } from './history.js';
import { mulberry32 } from './scenarios.js';

/**
 * The chaos load: open-loop at a fixed rate over every node, recorded op by op into a Jepsen-style history.
 * Ops are issued by logical client processes, each sequential and with its own session token; an
 * arrival goes to an idle process (a new one if all are busy), so the rate does not drop while requests
 * hang. A process whose op ended `unknown` is retired (that op may still take effect) and a fresh process
 * id takes over its session token. The op choice and the HTTP-answer mapping are pure functions.
 */

/** The recording clock: ms, monotonic within the process. */
export const now = (): number => performance.timeOrigin + performance.now();

/** What a generated operation asks for, before it is sent. */
export type OpSpec =
  | {
      kind: 'write';
      method: 'PUT' | 'DELETE';
      key: string;
      value: number | null;
      ifMatch?: string;
      ifNoneMatch?: boolean;
    }
  | { kind: 'read'; key: string; consistency: Consistency };

/** The op mix (fractions of all ops; the rest are plain PUTs). */
export interface OpMix {
  deletes: number;
  ifMatch: number;
  ifNoneMatch: number;
  eventual: number;
  session: number;
  strong: number;
}

/** ~60% writes (48% plain puts, 5% deletes, 7% conditional), ~40% reads across three levels. */
export const DEFAULT_MIX: OpMix = {
  deletes: 0.05,
  ifMatch: 0.05,
  ifNoneMatch: 0.02,
  eventual: 0.15,
  session: 0.15,
  strong: 0.1,
};

/**
 * Chooses the next op (pure given `rng`): a key from `keys`; a write's value is `valueId` (unique in the
 * run); an If-Match write uses the version this process last saw for the key, else becomes If-None-Match.
 */
export function chooseOp(
  rng: () => number,
  keys: readonly string[],
  valueId: number,
  lastSeen: ReadonlyMap<string, string>,
  mix: OpMix = DEFAULT_MIX,
): OpSpec {
  const key = keys[Math.floor(rng() * keys.length)]!;
  const r = rng();
  // Cumulative thresholds over the mix; the remainder is plain puts.
  const bands: Array<[number, () => OpSpec]> = [
    [mix.eventual, () => ({ kind: 'read', key, consistency: 'eventual' })],
    [mix.session, () => ({ kind: 'read', key, consistency: 'session' })],
    [mix.strong, () => ({ kind: 'read', key, consistency: 'strong' })],
    [mix.deletes, () => ({ kind: 'write', method: 'DELETE', key, value: null })],
    [
      mix.ifMatch,
      () => {
        const v = lastSeen.get(key);
        return v !== undefined
          ? { kind: 'write', method: 'PUT', key, value: valueId, ifMatch: v }
          : { kind: 'write', method: 'PUT', key, value: valueId, ifNoneMatch: true };
      },
    ],
    [mix.ifNoneMatch, () => ({ kind: 'write', method: 'PUT', key, value: valueId, ifNoneMatch: true })],
  ];
  let acc = 0;
  for (const [p, make] of bands) {
    acc += p;
    if (r < acc) return make();
  }
  return { kind: 'write', method: 'PUT', key, value: valueId };
}

/** An HTTP answer as the classifiers see it. */
export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body, read field by field
  body: any;
}

/** The fields of a write op an answer decides. */
export type WriteResult = Pick<WriteOp, 'outcome' | 'status' | 'code' | 'version' | 'verdict'>;

/**
 * Maps a write's HTTP answer to an outcome: 200/201 ok (with the version); 412 fail, rejected (with the
 * rejected record's version); 202 pending → unknown until /v1/writes resolves it; any other 4xx fail;
 * a 5xx problem with `definite: true` fail; every other 5xx (504 write_outcome_unknown, 500) unknown.
 */
export function classifyWrite(a: Answer, conditional: boolean): WriteResult {
  const code = typeof a.body?.code === 'string' ? a.body.code : undefined;
  const version = typeof a.body?.version === 'string' ? a.body.version : undefined;
  if (a.status === 200 || a.status === 201) {
    return {
      outcome: 'ok',
      status: a.status,
      version,
      ...(conditional ? { verdict: 'applied' as const } : {}),
    };
  }
  if (a.status === 202) return { outcome: 'unknown', status: 202, code: 'pending', version };
  if (a.status === 412) return { outcome: 'fail', status: 412, code, version, verdict: 'rejected' };
  if (a.status >= 400 && a.status < 500) return { outcome: 'fail', status: a.status, code };
  const definite = a.body?.definite === true;
  return { outcome: definite ? 'fail' : 'unknown', status: a.status, code };
}

/** The fields of a read op an answer decides. */
export type ReadResult = Pick<ReadOp, 'outcome' | 'status' | 'code' | 'value' | 'version'>;

/** Maps a read's HTTP answer: 200 ok with value and version; 404 ok with value null; anything else fail (a read changes nothing). */
export function classifyRead(a: Answer): ReadResult {
  if (a.status === 200) {
    const v = a.body?.value;
    return {
      outcome: 'ok',
      status: 200,
      value: typeof v === 'number' ? v : v === null || v === undefined ? null : Number.NaN,
      version: typeof a.body?.version === 'string' ? a.body.version : undefined,
    };
  }
  if (a.status === 404) return { outcome: 'ok', status: 404, value: null };
  return {
    outcome: 'fail',
    status: a.status,
    code: typeof a.body?.code === 'string' ? a.body.code : undefined,
  };
}

/**
 * A request that got no answer: refused connections never reached the node (definite); a timeout or a
 * reset after sending may have taken effect (unknown).
 */
export function classifyNoAnswer(e: unknown): { outcome: Outcome; code: string } {
  const cause = (e as { cause?: { code?: string } })?.cause;
  const name = (e as { name?: string })?.name;
  if (cause?.code === 'ECONNREFUSED') return { outcome: 'fail', code: 'ECONNREFUSED' };
  if (name === 'TimeoutError' || name === 'AbortError') return { outcome: 'unknown', code: 'client_timeout' };
  return { outcome: 'unknown', code: cause?.code ?? name ?? 'network_error' };
}

/** A node the load talks to. */
export interface LoadTarget {
  id: string;
  url: string;
}

/** Options of a load run. */
export interface LoadOptions {
  targets: LoadTarget[];
  /** ops/s, open loop. */
  rate: number;
  keys: string[];
  seed: number;
  /** For decoding session tokens. */
  topicTag: string;
  partitions: number;
  partitionOf: (key: string) => number;
  /** Every request's client-side bound. */
  clientTimeoutMs?: number;
  /** Server-side wait bound sent with session and strong reads (timeoutMs). */
  readTimeoutMs?: number;
  /** Processes created up front. */
  initialProcesses?: number;
  /** Busy processes at most; arrivals beyond are skipped (counted). */
  maxInFlight?: number;
}

interface Proc {
  id: number;
  token: string | undefined;
  lastSeen: Map<string, string>;
  lastUsed: number;
}

/** A running load; `stop()` ends the arrivals and waits (bounded by the client timeout) for in-flight ops. */
export class Load {
  /** Every op, in invocation order; in-flight ops are updated in place when they complete. */
  readonly ops: HistoryOp[] = [];
  /** Arrivals dropped because maxInFlight processes were busy. */
  skipped = 0;
  private readonly rng: () => number;
  private readonly idle: Proc[] = [];
  private nextProc = 0;
  private nextId = 0;
  private inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private issued = 0;
  private startedAt = 0;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: LoadOptions) {
    this.rng = mulberry32(opts.seed ^ 0x5eed);
    for (let i = 0; i < (opts.initialProcesses ?? 10); i++) this.idle.push(this.newProc(undefined));
  }

  /** Starts issuing ops at the configured rate. */
  start(): void {
    this.startedAt = now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  /** Ops currently awaiting an answer. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Stops new arrivals and waits for the ops in flight (each is bounded by the client timeout). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      await Promise.allSettled([...this.inFlight]);
    })();
    return this.stopping;
  }

  private newProc(token: string | undefined): Proc {
    return { id: this.nextProc++, token, lastSeen: new Map(), lastUsed: 0 };
  }

  private tick(): void {
    const due = Math.floor(((now() - this.startedAt) * this.opts.rate) / 1000);
    while (this.issued < due) {
      this.issued++;
      if (this.inFlight.size >= (this.opts.maxInFlight ?? 300)) {
        this.skipped++;
        continue;
      }
      // Least recently used idle process first, so sessions are spread; a new one if all are busy.
      const proc = this.idle.shift() ?? this.newProc(undefined);
      const p = this.run(proc).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  private decode(token: string | null | undefined): Record<number, number> | undefined {
    if (!token) return undefined;
    const d = decodeSession(token, { tag: this.opts.topicTag, partitions: this.opts.partitions });
    return d.ok ? Object.fromEntries(d.offsets) : undefined;
  }

  private async run(proc: Proc): Promise<void> {
    const id = this.nextId++;
    const spec = chooseOp(this.rng, this.opts.keys, id, proc.lastSeen);
    const target = this.opts.targets[Math.floor(this.rng() * this.opts.targets.length)]!;
    const headers: Record<string, string> = {};
    if (proc.token) headers['lagoon-session'] = proc.token;
    let url = `${target.url}/v1/kv/${encodeURIComponent(spec.key)}`;
    let op: HistoryOp;
    let init: RequestInit;
    if (spec.kind === 'write') {
      if (spec.ifMatch !== undefined) headers['if-match'] = `"${spec.ifMatch}"`;
      if (spec.ifNoneMatch) headers['if-none-match'] = '*';
      if (spec.method === 'PUT') headers['content-type'] = 'application/json';
      init = {
        method: spec.method,
        headers,
        body: spec.method === 'PUT' ? JSON.stringify(spec.value) : undefined,
      };
      op = {
        kind: 'write',
        id,
        process: proc.id,
        node: target.id,
        key: spec.key,
        value: spec.value,
        ...(spec.ifMatch !== undefined ? { ifMatch: spec.ifMatch } : {}),
        ...(spec.ifNoneMatch ? { ifNoneMatch: true } : {}),
        invokeAt: now(),
        outcome: 'unknown',
      };
    } else {
      const q = new URLSearchParams({ consistency: spec.consistency });
      if (spec.consistency !== 'eventual') q.set('timeoutMs', String(this.opts.readTimeoutMs ?? 5000));
      url += `?${q}`;
      init = { method: 'GET', headers };
      const sessionIn = this.decode(proc.token);
      op = {
        kind: 'read',
        id,
        process: proc.id,
        node: target.id,
        key: spec.key,
        consistency: spec.consistency,
        ...(sessionIn ? { sessionIn } : {}),
        partition: this.opts.partitionOf(spec.key),
        invokeAt: now(),
        outcome: 'unknown',
      };
    }
    this.ops.push(op);
    let retire = false;
    try {
      const deadline = AbortSignal.timeout(this.opts.clientTimeoutMs ?? 15_000);
      let r: Response;
      try {
        r = await fetch(url, { ...init, signal: deadline });
      } catch (e) {
        // A pooled keep-alive connection the server closed just as the request went out: a read has no
        // effect, so it is sent again within the same op (and the same deadline); a write never is.
        if (op.kind !== 'read' || !isStaleSocket(e)) throw e;
        r = await fetch(url, { ...init, signal: deadline });
      }
      const text = await r.text();
      op.completeAt = now();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const token = r.headers.get('lagoon-session');
      if (op.kind === 'write') {
        Object.assign(
          op,
          stripUndefined(
            classifyWrite(
              { status: r.status, body },
              spec.kind === 'write' && (spec.ifMatch !== undefined || !!spec.ifNoneMatch),
            ),
          ),
        );
        if (op.outcome === 'ok' && op.version !== undefined) proc.lastSeen.set(op.key, op.version);
      } else {
        Object.assign(op, stripUndefined(classifyRead({ status: r.status, body })));
        const out = this.decode(token);
        if (out) op.sessionOut = out;
        if (op.outcome === 'ok' && op.version !== undefined) proc.lastSeen.set(op.key, op.version);
      }
      if (token) proc.token = token;
      retire = op.outcome === 'unknown';
    } catch (e) {
      op.completeAt = now();
      const c = classifyNoAnswer(e);
      op.outcome = c.outcome;
      op.code = c.code;
      retire = op.outcome === 'unknown';
    }
    proc.lastUsed = op.completeAt ?? now();
    // An op with an unknown outcome may still happen: its process is done (Jepsen); a new id takes the session.
    this.idle.push(retire ? this.newProc(proc.token) : proc);
  }
}

/** undici's "other side closed" / reset on a reused connection. */
function isStaleSocket(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } })?.cause?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A 202 (pending) conditional write takes the verdict the replicas reached, once settled. */
export function resolvePending(ops: HistoryOp[], finals: readonly NodeFinal[]): number {
  let resolved = 0;
  for (const o of ops) {
    if (o.kind !== 'write' || o.status !== 202 || o.outcome !== 'unknown' || o.version === undefined)
      continue;
    const seen = finals
      .map((f) => f.writes[o.version!]?.status)
      .find((s) => s === 'applied' || s === 'rejected');
    if (seen === 'applied') {
      Object.assign(o, { outcome: 'ok', verdict: 'applied' } satisfies Partial<WriteOp>);
      resolved++;
    } else if (seen === 'rejected') {
      Object.assign(o, { outcome: 'fail', verdict: 'rejected' } satisfies Partial<WriteOp>);
      resolved++;
    }
  }
  return resolved;
}
