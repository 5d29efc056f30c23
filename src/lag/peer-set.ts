/**
 * The nodes this node compares digests with (the dashboard's digest agreement): the configured `--peers`, plus
 * nodes that introduced themselves — a node sends its own URL in `Lagoon-Peer` when it calls a peer's
 * /v1/digest or /v1/snapshot, so a node added to a running cluster (`lagoon node --peers …`) is known to every
 * peer it calls without restarting them. A learned node that has not answered for `forgetAfterMs` is forgotten
 * (a removed node); configured ones are kept. Bounded: at most `max` learned nodes.
 */
export class PeerSet {
  private readonly configured: string[];
  private readonly learned = new Map<string, { failingSince: number | undefined }>();
  private readonly self: () => string;
  private readonly max: number;
  private readonly forgetAfterMs: number;

  constructor(
    configured: readonly string[],
    self: () => string,
    opts: { max?: number; forgetAfterMs?: number } = {},
  ) {
    this.configured = configured.map((u) => originOf(u) ?? u);
    this.self = self;
    this.max = opts.max ?? 64;
    this.forgetAfterMs = opts.forgetAfterMs ?? 10 * 60_000;
  }

  list(): string[] {
    return [...this.configured, ...this.learned.keys()];
  }

  /** Adds a node that introduced itself; true if it was not known. Refuses anything but an http(s) origin. */
  learn(url: string): boolean {
    const origin = originOf(url);
    if (origin === undefined || origin === originOf(this.self()) || this.configured.includes(origin))
      return false;
    if (this.learned.has(origin) || this.learned.size >= this.max) return false;
    this.learned.set(origin, { failingSince: undefined });
    return true;
  }

  /** After a call to `url`: a learned node failing for longer than forgetAfterMs is dropped (returns true then). */
  observe(url: string, ok: boolean, now = Date.now()): boolean {
    const entry = this.learned.get(url);
    if (!entry) return false;
    if (ok) {
      entry.failingSince = undefined;
      return false;
    }
    entry.failingSince ??= now;
    if (now - entry.failingSince < this.forgetAfterMs) return false;
    this.learned.delete(url);
    return true;
  }
}

/** `http(s)://host:port` of a URL without path, query or credentials; undefined for anything else. */
export function originOf(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash)
    return undefined;
  return u.origin;
}
