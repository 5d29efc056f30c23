/**
 * One HTTP exchange with one node, over nothing but `fetch`, `AbortController` and timers (so the client runs in
 * browsers too), and the set of nodes the client spreads requests over.
 */

/** What a node answered: the status, headers and the body (parsed when it is JSON). */
export interface Exchange {
  node: string;
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * Why no answer came back. The difference matters for requests that are not safe to repeat:
 * - `not_sent`: the connection was never made (refused, no route, name not found): the node saw nothing.
 * - `lost`: the connection broke after the request may have left: the node may have acted on it.
 * - `timeout`: no whole answer within the attempt's time: the node may have acted on it.
 * - `aborted`: the caller's signal fired.
 */
export type TransportFailureKind = 'not_sent' | 'lost' | 'timeout' | 'aborted';

export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailureKind,
    readonly node: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/** Error codes (Node's undici and libuv) that mean the connection was never made, so nothing was sent. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The system error codes inside a fetch failure (`cause`, or each of an AggregateError's `errors`). */
function errorCodes(e: unknown, depth = 0): string[] {
  if (e === null || typeof e !== 'object' || depth > 4) return [];
  const x = e as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof x.code === 'string' ? [x.code] : [];
  const nested = Array.isArray(x.errors) ? x.errors.flatMap((i) => errorCodes(i, depth + 1)) : [];
  return [...own, ...nested, ...errorCodes(x.cause, depth + 1)];
}

/**
 * A fetch failure was "not sent" only when every code in it says the connection was never made. A browser
 * gives no codes: then it counts as lost, the safe assumption for a write.
 */
export function classifyFetchError(e: unknown): 'not_sent' | 'lost' {
  const codes = errorCodes(e);
  return codes.length > 0 && codes.every((c) => NOT_SENT_CODES.has(c)) ? 'not_sent' : 'lost';
}

export interface ExchangeRequest {
  method: string;
  /** Path with query string. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** Sends one request to `node` and reads the whole answer within `timeoutMs`. Throws TransportError only. */
export async function exchange(fetchFn: typeof fetch, node: string, req: ExchangeRequest): Promise<Exchange> {
  if (req.signal?.aborted) throw new TransportError('aborted', node, 'aborted by the caller');
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, req.timeoutMs);
  const onAbort = () => ctl.abort();
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetchFn(node + req.path, {
      method: req.method,
      headers: req.headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      signal: ctl.signal,
    });
    // Read the whole body under the same timer: a node that sends headers and then stalls is no answer.
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (/[/+]json\b/.test(type)) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return { node, status: res.status, headers: res.headers, body };
  } catch (e) {
    if (timedOut) {
      throw new TransportError('timeout', node, `no answer from ${node} within ${req.timeoutMs} ms`, {
        cause: e,
      });
    }
    if (req.signal?.aborted) throw new TransportError('aborted', node, 'aborted by the caller', { cause: e });
    const kind = classifyFetchError(e);
    const why = errorCodes(e)[0] ?? (e as Error)?.message ?? String(e);
    throw new TransportError(kind, node, `request to ${node} failed (${why})`, { cause: e });
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The nodes a client talks to, and which of them looked down lately. `sticky` sends every call to one node
 * until it fails, then stays on the node that worked; `round-robin` starts each call on the next node.
 * A node marked down is skipped for a cooldown, unless every node is down.
 */
export class NodePool {
  private readonly urls: string[];
  private readonly downUntil = new Map<string, number>();
  private cursor = 0;

  constructor(
    urls: readonly string[],
    private readonly routing: 'sticky' | 'round-robin',
    private readonly now: () => number = Date.now,
  ) {
    this.urls = [...new Set(urls.map(normalizeUrl))];
    if (this.urls.length === 0) throw new TypeError('LagoonClient needs at least one node URL');
  }

  get nodes(): readonly string[] {
    return this.urls;
  }

  /** The nodes in the order a new call should try them (its first choice first). */
  private rotation(): string[] {
    const start = this.cursor % this.urls.length;
    if (this.routing === 'round-robin') this.cursor = (this.cursor + 1) % this.urls.length;
    return [...this.urls.slice(start), ...this.urls.slice(0, start)];
  }

  /** Starts a call: returns the function that picks the node for each of its attempts. */
  plan(preferred?: string): (tried: ReadonlySet<string>) => string {
    const first = preferred === undefined ? undefined : normalizeUrl(preferred);
    const rotation = this.rotation();
    const order = first === undefined ? rotation : [first, ...rotation.filter((u) => u !== first)];
    return (tried) => {
      const t = this.now();
      const up = order.filter((u) => (this.downUntil.get(u) ?? 0) <= t);
      // An untried node that is up; else a tried one that is up; else the node that comes back soonest.
      return (
        up.find((u) => !tried.has(u)) ??
        up[0] ??
        order.reduce((a, b) => ((this.downUntil.get(a) ?? 0) <= (this.downUntil.get(b) ?? 0) ? a : b))
      );
    };
  }

  isDown(url: string): boolean {
    return (this.downUntil.get(normalizeUrl(url)) ?? 0) > this.now();
  }

  markDown(url: string, forMs: number): void {
    const u = normalizeUrl(url);
    this.downUntil.set(u, Math.max(this.downUntil.get(u) ?? 0, this.now() + forMs));
    if (this.routing === 'sticky' && this.urls[this.cursor] === u) {
      this.cursor = (this.cursor + 1) % this.urls.length;
    }
  }

  /** A node answered: it is up, and a sticky client stays with it. */
  markUp(url: string): void {
    const u = normalizeUrl(url);
    this.downUntil.delete(u);
    const i = this.urls.indexOf(u);
    if (this.routing === 'sticky' && i >= 0) this.cursor = i;
  }
}

export function normalizeUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
