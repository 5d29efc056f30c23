/**
 * Chaos scenarios as pure data: which faults, on what, when. `planScenario` turns a scenario name, a seed
 * and a duration into a deterministic schedule; the runner resolves the targets (a partition's leader,
 * the active controller) against the live cluster and applies it. Same seed ⇒ same schedule.
 */

/** Every scenario `lagoon chaos` knows, in the order `lagoon chaos all` runs them. */
export const SCENARIOS = [
  'broker-kill',
  'broker-stop',
  'broker-pause-short',
  'broker-pause-long',
  'two-brokers-down',
  'all-brokers-down',
  'rolling-restart',
  'node-kill-mid-batch',
  'slow-broker',
  'broker-blackhole',
] as const;

/** A scenario name. */
export type ScenarioName = (typeof SCENARIOS)[number];

/** Scenarios that need the fault proxy in front of the brokers. */
export const PROXY_SCENARIOS: ReadonlySet<ScenarioName> = new Set(['slow-broker', 'broker-blackhole']);

/** One-line descriptions, for help and reports. */
export const SCENARIO_DESCRIPTIONS: Record<ScenarioName, string> = {
  'broker-kill':
    'SIGKILL the leader of a partition (later faults: the leader or the active controller), restart it',
  'broker-stop':
    'SIGTERM (controlled shutdown) the leader of a partition or the active controller, restart it',
  'broker-pause-short': 'SIGSTOP a partition leader for 1.5 s, shorter than the 3 s broker session timeout',
  'broker-pause-long': 'SIGSTOP a partition leader for 10 s: it is fenced and its leaderships move',
  'two-brokers-down': 'SIGKILL a partition leader and one more broker: below min.insync.replicas',
  'all-brokers-down': 'SIGKILL every broker: eventual reads keep answering, strict writes fail definitely',
  'rolling-restart': 'SIGTERM and restart every broker, one after the other',
  'node-kill-mid-batch': 'SIGKILL one Lagoon node process while it applies under load, restart it',
  'slow-broker': 'add 200±100 ms latency to every connection to a partition leader (TCP proxy)',
  'broker-blackhole': 'silently drop all traffic to a partition leader (TCP proxy)',
};

/**
 * Largest share of writes that may fail definitely in a fault window of the scenario (the availability
 * checker's budget). One broker of three down must not fail writes (SPEC §4: a write waits for the new
 * leader); scenarios that take the log below min.insync.replicas, kill the node a client talks to or cut
 * a leader off the network have no budget: their failures are reported, not judged.
 */
export const WRITE_FAILURE_BUDGET: Partial<Record<ScenarioName, number>> = {
  'broker-kill': 0,
  'broker-stop': 0,
  'broker-pause-short': 0,
  'broker-pause-long': 0,
  'rolling-restart': 0,
  'slow-broker': 0,
};

/** Whether `s` names a scenario. */
export function isScenario(s: string): s is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(s);
}

/** A broker a fault acts on, resolved at injection time. `other`: any broker not yet chosen in the same fault. */
export type BrokerTarget =
  | { kind: 'leader'; partition: number }
  | { kind: 'controller' }
  | { kind: 'broker'; id: number }
  | { kind: 'other' };

/** A fault as the proxy applies it (mirrors src/chaos/proxy.ts' ProxyFault). */
export type PlannedProxyFault =
  | { kind: 'latency'; ms: number; jitterMs?: number }
  | { kind: 'blackhole' }
  | { kind: 'reset' }
  | { kind: 'bandwidth'; bytesPerSec: number };

/** What one fault does when injected; healing undoes it (restart, SIGCONT, proxy back to none). */
export type FaultAction =
  | { type: 'kill-broker'; target: BrokerTarget }
  | { type: 'stop-broker'; target: BrokerTarget }
  | { type: 'pause-broker'; target: BrokerTarget }
  | { type: 'kill-node'; node: number }
  | { type: 'proxy'; target: BrokerTarget; fault: PlannedProxyFault };

/** One fault window of a plan: its actions start together at `atMs` and are healed after `durationMs`. */
export interface PlannedFault {
  /** FaultWindow.kind in the history. */
  kind: string;
  actions: FaultAction[];
  /** ms after the load started. */
  atMs: number;
  /** How long the fault lasts before healing starts (restarting takes longer: the window ends when healed). */
  durationMs: number;
}

/** A whole run's schedule. */
export interface ScenarioPlan {
  scenario: ScenarioName;
  seed: number;
  /** How long the load runs (ms); at least the requested duration, longer if the faults need it. */
  loadMs: number;
  /** Warm-up before the first fault. */
  warmupMs: number;
  faults: PlannedFault[];
}

/** mulberry32: a tiny, fast, seeded PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [lo, hi] from `rng`. */
export function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** Time the system gets after the last heal, with load still running, before the load stops. */
export const MIN_RECOVERY_MS = 10_000;

interface Shape {
  /** Fault length (ms) before healing. */
  lengthMs: number;
  /** The fault's actions, the n-th time it is injected. */
  actions: (rng: () => number, n: number, partitions: number, nodes: number) => FaultAction[];
  /** Inject it more than once if the duration allows. */
  repeat: boolean;
}

const leader = (rng: () => number, partitions: number): BrokerTarget => ({
  kind: 'leader',
  partition: randInt(rng, 0, partitions - 1),
});

/** The first fault hits a partition leader; later ones the leader or the active controller, by coin. */
const leaderOrController = (rng: () => number, n: number, partitions: number): BrokerTarget =>
  n > 0 && rng() < 0.5 ? { kind: 'controller' } : leader(rng, partitions);

const SHAPES: Record<Exclude<ScenarioName, 'rolling-restart'>, Shape> = {
  'broker-kill': {
    lengthMs: 10_000,
    repeat: true,
    actions: (rng, n, p) => [{ type: 'kill-broker', target: leaderOrController(rng, n, p) }],
  },
  'broker-stop': {
    lengthMs: 10_000,
    repeat: true,
    actions: (rng, n, p) => [{ type: 'stop-broker', target: leaderOrController(rng, n, p) }],
  },
  'broker-pause-short': {
    lengthMs: 1500,
    repeat: true,
    actions: (rng, _n, p) => [{ type: 'pause-broker', target: leader(rng, p) }],
  },
  'broker-pause-long': {
    lengthMs: 10_000,
    repeat: true,
    actions: (rng, _n, p) => [{ type: 'pause-broker', target: leader(rng, p) }],
  },
  'two-brokers-down': {
    lengthMs: 10_000,
    repeat: false,
    actions: (rng, _n, p) => [
      { type: 'kill-broker', target: leader(rng, p) },
      { type: 'kill-broker', target: { kind: 'other' } },
    ],
  },
  'all-brokers-down': {
    lengthMs: 10_000,
    repeat: false,
    actions: () => [1, 2, 3].map((id) => ({ type: 'kill-broker', target: { kind: 'broker', id } })),
  },
  'node-kill-mid-batch': {
    lengthMs: 5000,
    repeat: true,
    actions: (rng, _n, _p, nodes) => [{ type: 'kill-node', node: randInt(rng, 0, nodes - 1) }],
  },
  'slow-broker': {
    lengthMs: 10_000,
    repeat: false,
    actions: (rng, _n, p) => [
      { type: 'proxy', target: leader(rng, p), fault: { kind: 'latency', ms: 200, jitterMs: 100 } },
    ],
  },
  'broker-blackhole': {
    lengthMs: 10_000,
    repeat: false,
    actions: (rng, _n, p) => [{ type: 'proxy', target: leader(rng, p), fault: { kind: 'blackhole' } }],
  },
};

/**
 * The schedule of a scenario: a warm-up (20% of the duration, 4-10 s, plus up to 1 s of seeded jitter),
 * then the fault, healed after its length; repeated after a seeded 5-10 s gap while the duration leaves
 * MIN_RECOVERY_MS after the last heal. The load runs at least until MIN_RECOVERY_MS after the first heal.
 * Pure and deterministic in (scenario, seed, durationMs, partitions, nodes).
 */
export function planScenario(
  scenario: ScenarioName,
  opts: { seed: number; durationMs: number; partitions: number; nodes?: number },
): ScenarioPlan {
  const rng = mulberry32(opts.seed);
  const nodes = opts.nodes ?? 3;
  const warmupMs =
    Math.min(10_000, Math.max(4000, Math.round(opts.durationMs * 0.2))) + randInt(rng, 0, 1000);
  const faults: PlannedFault[] = [];
  if (scenario === 'rolling-restart') {
    // Each broker in a seeded order: SIGTERM, 2 s down, restart (the window ends when it is back), 5 s gap.
    const order = shuffle(rng, [1, 2, 3]);
    let at = warmupMs;
    for (const id of order) {
      faults.push({
        kind: 'rolling-restart',
        actions: [{ type: 'stop-broker', target: { kind: 'broker', id } }],
        atMs: at,
        durationMs: 2000,
      });
      // Restarting a JVM broker takes several seconds on a loaded machine; leave room for it.
      at += 2000 + 10_000;
    }
    const end = at;
    return { scenario, seed: opts.seed, warmupMs, faults, loadMs: Math.max(opts.durationMs, end) };
  }
  const shape = SHAPES[scenario];
  let at = warmupMs;
  for (let n = 0; ; n++) {
    faults.push({
      kind: scenario,
      actions: shape.actions(rng, n, opts.partitions, nodes),
      atMs: at,
      durationMs: shape.lengthMs,
    });
    const healedAt = at + shape.lengthMs;
    const next = healedAt + randInt(rng, 5000, 10_000);
    if (!shape.repeat || next + shape.lengthMs + MIN_RECOVERY_MS > opts.durationMs) break;
    at = next;
  }
  const last = faults[faults.length - 1]!;
  return {
    scenario,
    seed: opts.seed,
    warmupMs,
    faults,
    loadMs: Math.max(opts.durationMs, last.atMs + last.durationMs + MIN_RECOVERY_MS),
  };
}

/** Fisher-Yates with `rng`. */
export function shuffle<T>(rng: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, 0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A one-line description of a fault action for progress lines and reports. */
export function describeAction(a: FaultAction): string {
  const t = (x: BrokerTarget) =>
    x.kind === 'leader'
      ? `leader of partition ${x.partition}`
      : x.kind === 'controller'
        ? 'active controller'
        : x.kind === 'broker'
          ? `broker ${x.id}`
          : 'another broker';
  switch (a.type) {
    case 'kill-broker':
      return `SIGKILL ${t(a.target)}`;
    case 'stop-broker':
      return `SIGTERM ${t(a.target)}`;
    case 'pause-broker':
      return `SIGSTOP ${t(a.target)}`;
    case 'kill-node':
      return `SIGKILL node ${a.node + 1}`;
    case 'proxy':
      return `proxy ${a.fault.kind} on ${t(a.target)}`;
  }
}
