import { type BodyName, missingFields, ROUTES } from './contract.js';
import { isProblem, LagoonError } from './errors.js';
import { backoffMs, decide, type Failure, parseRetryAfter, type RequestKind, sleep } from './retry.js';
import { mergeTokens } from './session.js';
import { type Exchange, exchange, NodePool, TransportError } from './transport.js';
import type {
  BatchOp,
  BatchOptions,
  BatchOutcomeBody,
  BatchResult,
  BatchResultBody,
  BufferedWriteBody,
  BufferedWriteOptions,
  BufferedWriteResult,
  Consistency,
  GetResult,
  Item,
  LagReport,
  LagResult,
  NodeStatus,
  PendingWriteBody,
  ReadOptions,
  ResponseMeta,
  ScanOptions,
  ScanPage,
  ScanResultBody,
  StatusResult,
  StrictWriteOptions,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
  WriteOutcomeBody,
  WriteResult,
  WriteResultBody,
} from './types.js';

export interface LagoonClientOptions {
  /** Base URLs of the nodes (any node takes reads and writes), e.g. `['http://127.0.0.1:8081', ...]`. */
  nodes: string | readonly string[];
  /** A session token from `client.session()`, to resume that session (read-your-writes, monotonic reads). */
  session?: string;
  /** `sticky` (default): one node until it fails, then the next that works. `round-robin`: each call the next. */
  routing?: 'sticky' | 'round-robin';
  /**
   * How long one attempt may take before the client gives up on it and retries (a write: with the same
   * Idempotency-Key). Default: 30 s, or, when a call gives the server a `timeoutMs`, enough for that wait.
   */
  attemptTimeoutMs?: number;
  /** Most requests one call sends, first attempt included (default 8). */
  maxAttempts?: number;
  /** Backoff between retries: the first step and the largest (defaults 100 ms and 5 s), jittered. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** How long a node that failed is skipped while others answer (default 5 s, at least its Retry-After). */
  nodeCooldownMs?: number;
  /** How long to keep asking for the verdict of a write or batch the node could not decide in time (60 s). */
  verdictTimeoutMs?: number;
  /** Bearer token, for nodes started with LAGOON_API_TOKENS. */
  token?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** An answer the caller handles, with how many requests it took. */
interface Answer extends Exchange {
  attempts: number;
}

interface RequestSpec {
  kind: RequestKind;
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  path: string;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: string;
  /** Answers the call handles itself: successes, and problems it resolves (a 404 read, a batch's 504). */
  accept: (x: Exchange) => boolean;
  /** Bodies an accepted answer must match, by status (any one of them). */
  shapes?: Partial<Record<number, readonly BodyName[]>>;
  /** How long the server may wait on its side (timeoutMs), to size the attempt's timeout. */
  serverWaitMs?: number | undefined;
  signal?: AbortSignal | undefined;
  node?: string | undefined;
}

/** What polling a write's verdict found. */
type WriteVerdict = { kind: 'applied'; version: string } | { kind: 'resend' };

const DEFAULT_ATTEMPT_MS = 30_000;
/** Margin over a server-side wait: the answer still has to travel, on a busy machine too. */
const GRACE_MS = 10_000;
const DEFAULT_SERVER_WAIT_MS = 10_000;

/**
 * A typed client for a Lagoon cluster. One instance is one session: it merges every Lagoon-Session token it
 * receives and sends it on session reads, so what this client wrote or read is never missing from a later
 * session read, on any node. Writes carry an Idempotency-Key and are retried safely; calls move to another
 * node when one is down. See docs/client.md.
 */
export class LagoonClient {
  private readonly pool: NodePool;
  private readonly fetchFn: typeof fetch;
  private readonly baseHeaders: Record<string, string>;
  private readonly maxAttempts: number;
  private readonly backoffBase: number;
  private readonly backoffMax: number;
  private readonly cooldownMs: number;
  private readonly verdictTimeoutMs: number;
  private readonly attemptTimeoutMs: number | undefined;
  private token: string | undefined;

  constructor(options: LagoonClientOptions) {
    const nodes = typeof options.nodes === 'string' ? [options.nodes] : options.nodes;
    this.pool = new NodePool(nodes, options.routing ?? 'sticky');
    this.fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.baseHeaders = {
      accept: 'application/json, application/problem+json',
      ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    };
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 8);
    this.backoffBase = options.backoff?.baseMs ?? 100;
    this.backoffMax = options.backoff?.maxMs ?? 5_000;
    this.cooldownMs = options.nodeCooldownMs ?? 5_000;
    this.verdictTimeoutMs = options.verdictTimeoutMs ?? 60_000;
    this.attemptTimeoutMs = options.attemptTimeoutMs;
    this.token = options.session;
  }

  /** The nodes this client talks to. */
  get nodes(): readonly string[] {
    return this.pool.nodes;
  }

  /** This client's session token (undefined before its first answer): pass it to `new LagoonClient({session})`. */
  session(): string | undefined {
    return this.token;
  }

  /** Reads one key. A missing key is `{found: false}`, not an error; both carry the read's freshness. */
  async get<T = unknown>(key: string, opts: ReadOptions = {}): Promise<GetResult<T>> {
    const a = await this.send({
      kind: 'read',
      method: 'GET',
      path: kvPath(key),
      query: pick(opts, ROUTES.get.query),
      headers: this.sessionHeader(opts.consistency),
      accept: (x) =>
        x.status === 200 || (x.status === 404 && isProblem(x.body) && x.body.code === 'not_found'),
      shapes: { 200: ROUTES.get.responses[200] },
      serverWaitMs: opts.timeoutMs,
      signal: opts.signal,
      node: opts.node,
    });
    const meta = { ...metaOf(a, a.attempts), consistency: consistencyOf(a) };
    if (a.status === 404) return { ...meta, found: false, key, value: undefined, version: null };
    return { ...meta, found: true, ...(a.body as Item<T>) };
  }

  /** One page of a scan: keys in order from `cursor` (exclusive), at most `limit`. */
  async scanPage<T = unknown>(opts: ScanOptions = {}): Promise<ScanPage<T>> {
    const a = await this.send({
      kind: 'read',
      method: 'GET',
      path: '/v1/kv',
      query: pick(opts, ROUTES.scan.query),
      headers: this.sessionHeader(opts.consistency),
      accept: (x) => x.status === 200,
      shapes: { 200: ROUTES.scan.responses[200] },
      serverWaitMs: opts.timeoutMs,
      signal: opts.signal,
      node: opts.node,
    });
    const body = a.body as ScanResultBody;
    return {
      ...metaOf(a, a.attempts),
      consistency: consistencyOf(a),
      items: body.items as Item<T>[],
      nextCursor: body.nextCursor,
    };
  }

  /**
   * Scans keys in order, page by page: `for await (const page of client.scan({prefix: 'user/'}))`. Each page
   * is read on its own (possibly from another node); the cursor is a key, so pages continue on any node.
   */
  async *scan<T = unknown>(opts: ScanOptions = {}): AsyncGenerator<ScanPage<T>, void, undefined> {
    let cursor = opts.cursor;
    do {
      const page: ScanPage<T> = await this.scanPage<T>({
        ...opts,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      yield page;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** Writes a JSON value. Resolves once the write is decided: applied, or an error (412 when a condition fails). */
  put<T>(key: string, value: T, opts?: StrictWriteOptions): Promise<WriteResult>;
  put<T>(key: string, value: T, opts: BufferedWriteOptions): Promise<WriteResult | BufferedWriteResult>;
  put<T>(
    key: string,
    value: T,
    opts: StrictWriteOptions | BufferedWriteOptions = {},
  ): Promise<WriteResult | BufferedWriteResult> {
    const body = JSON.stringify(value);
    if (body === undefined) {
      return Promise.reject(
        new LagoonError('invalid_value', 'The value must be representable as JSON', { status: 400 }),
      );
    }
    return this.write('PUT', key, body, opts);
  }

  /** Deletes a key (a tombstone); the same options (but ttl) and answers as `put`. */
  delete(key: string, opts?: Omit<StrictWriteOptions, 'ttl'>): Promise<WriteResult>;
  delete(key: string, opts: Omit<BufferedWriteOptions, 'ttl'>): Promise<WriteResult | BufferedWriteResult>;
  delete(
    key: string,
    opts: Omit<StrictWriteOptions | BufferedWriteOptions, 'ttl'> = {},
  ): Promise<WriteResult | BufferedWriteResult> {
    return this.write('DELETE', key, undefined, opts);
  }

  /**
   * Compare-and-set: reads the key (strong by default, or session), calls `fn` with its value (undefined when
   * absent), and writes the result only if the key still has the version read (If-Match; If-None-Match when it
   * was absent). When another writer got there first (412) it starts over, up to `maxAttempts` times, with a
   * jittered pause. `fn` may therefore run more than once: keep it free of side effects.
   */
  async update<T>(
    key: string,
    fn: (current: T | undefined, item: GetResult<T>) => T | Promise<T>,
    opts: UpdateOptions = {},
  ): Promise<UpdateResult<T>> {
    const maxAttempts = Math.max(1, opts.maxAttempts ?? 10);
    for (let attempt = 1; ; attempt++) {
      const current = await this.get<T>(key, {
        consistency: opts.consistency ?? 'strong',
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
        ...(opts.node !== undefined ? { node: opts.node } : {}),
      });
      const next = await fn(current.found ? current.value : undefined, current);
      try {
        const written = await this.put(key, next, {
          ...(current.found ? { ifMatch: current.version } : { ifNoneMatch: true }),
          ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}),
          ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
          node: current.nodeUrl,
        });
        return { ...written, value: next, updateAttempts: attempt };
      } catch (e) {
        if (!(e instanceof LagoonError) || e.code !== 'precondition_failed') throw e;
        if (attempt >= maxAttempts) {
          throw new LagoonError(
            'update_conflict',
            `update(${JSON.stringify(key)}): another writer changed the key before each of ${attempt} attempts`,
            { status: 412, retryable: true, definite: true, details: e.details ?? {}, attempts: attempt },
          );
        }
        await this.pause(backoffMs(attempt, 20, 1_000, Math.random), opts.signal);
      }
    }
  }

  /**
   * Several puts and deletes, all or nothing (POST /v1/batch). A batch that lost a cycle against another batch
   * (409 batch_conflict) or missed its deadline is sent again, since none of it applied. When the node cannot
   * say whether its commit went through (504), the client asks for the batch's verdict instead of resending;
   * if no verdict comes within `verdictTimeoutMs` it throws write_outcome_unknown with `details.batch`.
   */
  async batch(ops: readonly BatchOp[], opts: BatchOptions = {}): Promise<BatchResult> {
    const body = JSON.stringify({ ops });
    let attempts = 0;
    for (;;) {
      const a = await this.send({
        kind: 'batch',
        method: 'POST',
        path: '/v1/batch',
        query: pick(opts, ROUTES.batch.query),
        headers: { 'content-type': 'application/json' },
        body,
        accept: (x) =>
          x.status === 200 ||
          x.status === 202 ||
          (x.status === 504 &&
            isProblem(x.body) &&
            x.body.code === 'write_outcome_unknown' &&
            typeof x.body.batch === 'string'),
        shapes: { 200: ROUTES.batch.responses[200], 202: ROUTES.batch.responses[202] },
        serverWaitMs: opts.timeoutMs === undefined ? undefined : 2 * opts.timeoutMs,
        signal: opts.signal,
        node: opts.node,
      });
      attempts += a.attempts;
      if (a.status === 200) {
        const { status: _s, href: _h, ...rest } = a.body as BatchResultBody;
        return { ...rest, status: 'applied', ...metaOf(a, attempts) };
      }
      const known = a.status === 202 ? (a.body as BatchResultBody) : undefined;
      const id = known?.batch ?? String((a.body as { batch: string }).batch);
      const verdict = await this.awaitBatchVerdict(id, a.node, opts.signal);
      if (verdict.status === 'applied') {
        // After a 504 the answer carried no session token: take one from the node that applied the batch.
        if (known === undefined) await this.refreshSession(a.node, opts.signal);
        return {
          batch: id,
          status: 'applied',
          ...(known !== undefined ? { ops: known.ops } : {}),
          ...metaOf(a, attempts),
        };
      }
      const error = batchRejection(verdict, ops, a.node, attempts);
      if (!error.retryable || attempts >= this.maxAttempts) throw error;
      await this.pause(backoffMs(attempts, this.backoffBase, this.backoffMax, Math.random), opts.signal);
    }
  }

  /** GET /v1/status of a node (the client's current one, or `opts.node`). */
  async status(opts: { signal?: AbortSignal; node?: string } = {}): Promise<StatusResult> {
    const a = await this.send({
      kind: 'read',
      method: 'GET',
      path: '/v1/status',
      accept: (x) => x.status === 200,
      shapes: { 200: ROUTES.status.responses[200] },
      signal: opts.signal,
      node: opts.node,
    });
    return { ...(a.body as NodeStatus), ...metaOf(a, a.attempts) };
  }

  /** GET /v1/lag: every replica's lag per partition, as one node sees it (the dashboard's feed). */
  async lag(opts: { signal?: AbortSignal; node?: string } = {}): Promise<LagResult> {
    const a = await this.send({
      kind: 'read',
      method: 'GET',
      path: '/v1/lag',
      accept: (x) => x.status === 200 && typeof x.body === 'object' && x.body !== null,
      signal: opts.signal,
      node: opts.node,
    });
    return { ...(a.body as LagReport), ...metaOf(a, a.attempts) };
  }

  // ---- writes ------------------------------------------------------------------------------------------------

  private async write(
    method: 'PUT' | 'DELETE',
    key: string,
    body: string | undefined,
    opts: WriteOptions & { writeMode?: 'strict' | 'buffered' },
  ): Promise<WriteResult | BufferedWriteResult> {
    const idempotencyKey = opts.idempotencyKey ?? newIdempotencyKey();
    const headers: Record<string, string> = {
      'Idempotency-Key': idempotencyKey,
      // Strict unless asked: a node whose default is buffered would otherwise answer 202 to a plain put.
      'Lagoon-Write-Mode': opts.writeMode ?? 'strict',
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.ifMatch !== undefined ? { 'If-Match': quoteVersion(opts.ifMatch) } : {}),
      ...(opts.ifNoneMatch ? { 'If-None-Match': '*' } : {}),
    };
    const route = method === 'PUT' ? ROUTES.put : ROUTES.delete;
    let attempts = 0;
    for (;;) {
      const a = await this.send({
        kind: 'write',
        method,
        path: kvPath(key),
        query: pick(opts, route.query),
        headers,
        ...(body !== undefined ? { body } : {}),
        accept: (x) => x.status === 200 || x.status === 202,
        shapes: route.responses,
        // A write waits up to timeoutMs for Kafka, then (conditional or idempotent) as long again for its verdict.
        serverWaitMs: opts.timeoutMs === undefined ? undefined : 2 * opts.timeoutMs,
        signal: opts.signal,
        node: opts.node,
      });
      attempts += a.attempts;
      const replayed = a.headers.get('idempotent-replayed') === 'true';
      if (a.status === 200) {
        return { ...(a.body as WriteResultBody), ...metaOf(a, attempts), idempotencyKey, replayed };
      }
      const pending = a.body as PendingWriteBody | BufferedWriteBody;
      if (pending.status === 'buffered') return { ...pending, ...metaOf(a, attempts), idempotencyKey };
      // In the log, not yet decided by the node's replica: ask for the verdict rather than write it again.
      const verdict = await this.awaitWriteVerdict(pending.version, key, a.node, opts.signal);
      if (verdict.kind === 'applied') {
        const [partition, offset] = verdict.version.split('-').map(Number) as [number, number];
        return {
          key,
          version: verdict.version,
          partition,
          offset,
          status: 'applied',
          ...(method === 'DELETE' ? { deleted: true } : {}),
          ...metaOf(a, attempts),
          idempotencyKey,
          replayed: replayed || verdict.version !== pending.version,
        };
      }
      // Dropped for its deadline (its key stays free) or no longer known: sending it again is safe.
      if (attempts >= this.maxAttempts) {
        throw new LagoonError('write_deadline_passed', 'The write was not applied; retries are spent', {
          status: 503,
          retryable: true,
          definite: true,
          nodeUrl: a.node,
          attempts,
        });
      }
      await this.pause(backoffMs(attempts, this.backoffBase, this.backoffMax, Math.random), opts.signal);
    }
  }

  /** Polls GET /v1/writes/{version} until the write is decided; throws its rejection as the server would. */
  private async awaitWriteVerdict(
    version: string,
    key: string,
    node: string,
    signal: AbortSignal | undefined,
  ): Promise<WriteVerdict> {
    const deadline = Date.now() + this.verdictTimeoutMs;
    let asked = version;
    for (let poll = 1; ; poll++) {
      const a = await this.send({
        kind: 'read',
        method: 'GET',
        path: `/v1/writes/${encodeURIComponent(asked)}`,
        accept: (x) => x.status === 200,
        shapes: { 200: ROUTES.writeOutcome.responses[200] },
        signal,
        node,
      });
      const o = a.body as WriteOutcomeBody;
      if (o.status === 'applied') return { kind: 'applied', version: asked };
      // A copy of an earlier record under the same Idempotency-Key: that record's outcome answers the write.
      if (o.status === 'duplicate' && typeof o.reason === 'string' && o.reason !== asked) {
        asked = o.reason;
        continue;
      }
      if (o.status === 'rejected') {
        if (o.reason === 'deadline_passed') return { kind: 'resend' };
        throw writeRejection(o.reason ?? 'rejected', asked, key, a.node, a.attempts);
      }
      if (o.status === 'unknown' || o.status === 'duplicate') return { kind: 'resend' };
      if (Date.now() >= deadline) {
        throw new LagoonError(
          'write_outcome_unknown',
          `Write ${asked} was still undecided after ${this.verdictTimeoutMs} ms; retry with the same Idempotency-Key`,
          { status: 504, retryable: true, definite: false, details: { version: asked }, nodeUrl: a.node },
        );
      }
      await this.pause(backoffMs(poll, this.backoffBase, 1_000, Math.random), signal);
    }
  }

  /** Polls GET /v1/batches/{id} until the batch is decided, or gives up saying its outcome is unknown. */
  private async awaitBatchVerdict(
    id: string,
    node: string,
    signal: AbortSignal | undefined,
  ): Promise<BatchOutcomeBody> {
    const deadline = Date.now() + this.verdictTimeoutMs;
    for (let poll = 1; ; poll++) {
      const a = await this.send({
        kind: 'read',
        method: 'GET',
        path: `/v1/batches/${encodeURIComponent(id)}`,
        accept: (x) => x.status === 200,
        shapes: { 200: ROUTES.batchOutcome.responses[200] },
        signal,
        node,
      });
      const o = a.body as BatchOutcomeBody;
      if (o.status !== 'pending') return o;
      if (Date.now() >= deadline) {
        throw new LagoonError(
          'write_outcome_unknown',
          `Batch ${id} has no verdict after ${this.verdictTimeoutMs} ms: its commit may or may not have happened; GET /v1/batches/${id} later`,
          {
            status: 504,
            retryable: false,
            definite: false,
            details: { batch: id, href: `/v1/batches/${id}` },
            nodeUrl: a.node,
          },
        );
      }
      await this.pause(backoffMs(poll, this.backoffBase, 1_000, Math.random), signal);
    }
  }

  /** An eventual one-item scan on `node`: its answer's token covers every partition as that replica has it. */
  private async refreshSession(node: string, signal: AbortSignal | undefined): Promise<void> {
    await this.scanPage({ limit: 1, consistency: 'eventual', node, ...(signal ? { signal } : {}) }).catch(
      () => undefined,
    );
  }

  // ---- one request, with retries and failover ------------------------------------------------------------------

  private async send(spec: RequestSpec): Promise<Answer> {
    const pickNode = this.pool.plan(spec.node);
    const tried = new Set<string>();
    const path = spec.path + queryString(spec.query);
    const timeoutMs =
      this.attemptTimeoutMs ??
      (spec.serverWaitMs === undefined
        ? Math.max(DEFAULT_ATTEMPT_MS, DEFAULT_SERVER_WAIT_MS + GRACE_MS)
        : spec.serverWaitMs + GRACE_MS);
    let node = pickNode(tried);
    for (let attempt = 1; ; attempt++) {
      let failure: Failure;
      let error: LagoonError;
      try {
        const x = await exchange(this.fetchFn, node, {
          method: spec.method,
          path,
          headers: { ...this.baseHeaders, ...spec.headers },
          ...(spec.body !== undefined ? { body: spec.body } : {}),
          timeoutMs,
          signal: spec.signal,
        });
        this.absorbSession(x.headers);
        if (spec.accept(x)) {
          const wrong = shapeErrors(spec.shapes?.[x.status], x.body);
          if (wrong !== undefined) {
            throw new LagoonError('invalid_response', `${node} answered ${x.status} with ${wrong}`, {
              status: x.status,
              definite: spec.kind === 'read',
              nodeUrl: node,
              attempts: attempt,
            });
          }
          this.pool.markUp(node);
          return { ...x, attempts: attempt };
        }
        ({ failure, error } = problemFailure(x, spec.kind, attempt));
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        if (e.kind === 'aborted') throw abortedError(spec.kind, node, attempt, e);
        failure = { type: 'transport', kind: e.kind };
        error = transportError(e, spec.kind, attempt);
      }
      tried.add(node);
      const d = decide(spec.kind, failure);
      if (d.nodeFault) this.pool.markDown(node, Math.max(this.cooldownMs, d.minDelayMs));
      if (!d.retry || attempt >= this.maxAttempts) throw error;
      node = pickNode(tried);
      // Straight to a node that has not failed; otherwise back off (never less than the node's Retry-After).
      const fresh = d.nodeFault && !tried.has(node) && !this.pool.isDown(node);
      const delay = fresh
        ? 0
        : Math.max(d.minDelayMs, backoffMs(attempt, this.backoffBase, this.backoffMax, Math.random));
      await this.pause(delay, spec.signal, () => abortedError(spec.kind, node, attempt));
    }
  }

  private absorbSession(headers: Headers): void {
    const t = headers.get('lagoon-session');
    if (t) this.token = mergeTokens(this.token, t);
  }

  private sessionHeader(consistency: Consistency | undefined): Record<string, string> {
    return consistency === 'session' && this.token !== undefined ? { 'Lagoon-Session': this.token } : {};
  }

  private async pause(ms: number, signal: AbortSignal | undefined, onAbort?: () => LagoonError) {
    try {
      await sleep(ms, signal);
    } catch (e) {
      // Between attempts after a definite answer (a lost race, a refused batch): nothing is in flight.
      throw (
        onAbort?.() ??
        new LagoonError('aborted', 'The call was aborted by its signal', { status: 499, cause: e })
      );
    }
  }
}

// ---- helpers ------------------------------------------------------------------------------------------------------

function kvPath(key: string): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new LagoonError('invalid_key', 'A key is 1-1024 bytes of UTF-8', { status: 400 });
  }
  return `/v1/kv/${encodeURIComponent(key)}`;
}

/** The query values a route takes, from a call's options (the route's list is the contract the tests check). */
function pick(opts: object, keys: readonly string[]): Record<string, string | number | undefined> {
  const src = opts as Record<string, unknown>;
  const out: Record<string, string | number | undefined> = {};
  for (const k of keys) {
    const v = src[k];
    if (typeof v === 'string' || typeof v === 'number') out[k] = v;
  }
  return out;
}

function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (query === undefined) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** If-Match takes a strong ETag: a bare version gets its quotes; `*` and quoted ones pass as they are. */
function quoteVersion(v: string): string {
  return v === '*' || v.startsWith('"') ? v : `"${v}"`;
}

function newIdempotencyKey(): string {
  return `lc-${globalThis.crypto.randomUUID()}`;
}

function headerNumber(v: string | null): number | null {
  if (v === null || v === 'unknown' || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function metaOf(a: Exchange, attempts: number): ResponseMeta {
  return {
    nodeUrl: a.node,
    servedBy: a.headers.get('lagoon-served-by'),
    lagRecords: headerNumber(a.headers.get('lagoon-lag-records')),
    stalenessMs: headerNumber(a.headers.get('lagoon-staleness-ms')),
    attempts,
  };
}

function consistencyOf(a: Exchange): Consistency | null {
  const c = a.headers.get('lagoon-consistency');
  return c === 'eventual' || c === 'session' || c === 'bounded' || c === 'strong' ? c : null;
}

/** Why a body does not match any of the shapes expected, or undefined when it matches one (or none is set). */
function shapeErrors(names: readonly BodyName[] | undefined, body: unknown): string | undefined {
  if (names === undefined || names.length === 0) return undefined;
  const misses = names.map((n) => missingFields(n, body));
  if (misses.some((m) => m.length === 0)) return undefined;
  return `a body without ${misses[0]!.join(', ')} (expected ${names.join(' or ')})`;
}

/** The failure an answer that is not accepted stands for, and the error to throw if it is not retried. */
function problemFailure(
  x: Exchange,
  kind: RequestKind,
  attempt: number,
): { failure: Failure; error: LagoonError } {
  if (isProblem(x.body)) {
    const error = LagoonError.fromProblem(x.body, x.node, attempt);
    return {
      failure: { type: 'problem', error, retryAfterMs: parseRetryAfter(x.headers.get('retry-after')) },
      error,
    };
  }
  // Not Lagoon's answer (a proxy's 502, an HTML page): a 5xx may come from anywhere on the way, after the node
  // acted; anything else is a client-side surprise.
  const server = x.status >= 500;
  const error = new LagoonError('invalid_response', `${x.node} answered ${x.status} without a problem body`, {
    status: x.status,
    retryable: server,
    definite: !server || kind === 'read',
    nodeUrl: x.node,
    attempts: attempt,
  });
  return {
    failure: server
      ? { type: 'transport', kind: 'lost' }
      : { type: 'problem', error, retryAfterMs: undefined },
    error,
  };
}

function transportError(e: TransportError, kind: RequestKind, attempt: number): LagoonError {
  const timeout = e.kind === 'timeout';
  return new LagoonError(timeout ? 'request_timeout' : 'connection_failed', e.message, {
    status: timeout ? 504 : 503,
    retryable: true,
    // A read changes nothing; a request that never left changed nothing; anything else may have happened.
    definite: e.kind === 'not_sent' || kind === 'read',
    cause: e,
    nodeUrl: e.node,
    attempts: attempt,
  });
}

function abortedError(kind: RequestKind, node: string, attempt: number, cause?: unknown): LagoonError {
  return new LagoonError('aborted', 'The call was aborted by its signal', {
    status: 499,
    retryable: false,
    definite: kind === 'read',
    ...(cause !== undefined ? { cause } : {}),
    ...(node !== '' ? { nodeUrl: node } : {}),
    attempts: attempt,
  });
}

/** The error a write's rejection verdict stands for, as the node would have answered it. */
function writeRejection(
  reason: string,
  version: string,
  key: string,
  node: string,
  attempts: number,
): LagoonError {
  if (reason === 'idempotency_key_reused') {
    return new LagoonError(
      'idempotency_key_reused',
      'This Idempotency-Key was used for a different request; nothing was changed',
      { status: 422, details: { version }, nodeUrl: node, attempts },
    );
  }
  return new LagoonError('precondition_failed', `Condition not met for ${JSON.stringify(key)}: ${reason}`, {
    status: 412,
    details: { reason, version },
    nodeUrl: node,
    attempts,
  });
}

/** The error a batch's rejection verdict stands for: retryable when nothing stood in its way but timing. */
function batchRejection(
  v: BatchOutcomeBody,
  ops: readonly BatchOp[],
  node: string,
  attempts: number,
): LagoonError {
  const key = v.op === null ? undefined : ops[v.op]?.key;
  const details = { batch: v.batch, reason: v.reason, op: v.op, ...(key !== undefined ? { key } : {}) };
  if (v.reason === 'batch_conflict') {
    return new LagoonError(
      'batch_conflict',
      'The batch lost a cycle against another batch; nothing applied',
      {
        status: 409,
        retryable: true,
        definite: true,
        details,
        nodeUrl: node,
        attempts,
      },
    );
  }
  if (v.reason === 'deadline_passed') {
    return new LagoonError(
      'write_deadline_passed',
      'A part of the batch missed its deadline; nothing applied',
      {
        status: 503,
        retryable: true,
        definite: true,
        details,
        nodeUrl: node,
        attempts,
      },
    );
  }
  return new LagoonError(
    'precondition_failed',
    `Condition of ops[${v.op ?? '?'}] not met: ${v.reason ?? 'rejected'}; nothing of the batch was applied`,
    { status: 412, details, nodeUrl: node, attempts },
  );
}
