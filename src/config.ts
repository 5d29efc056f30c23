import { z } from 'zod';
import { parseApiTokens } from './core/api-tokens.js';
import { BOOKKEEPING_RETENTION_MS, WID_WINDOW_MS } from './core/decide.js';
import { DEFAULTS } from './defaults.js';
import { LagoonError } from './errors.js';
import { BREAKS } from './testing/breaks.js';

/** The levels LOG_LEVEL accepts (pino's, plus `silent`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const brokerList = z
  .string()
  .min(1)
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port')).min(1));

/** Everything a node needs, parsed once at the entry point; nothing else reads process.env. */
export const NodeConfigSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'node id: 1-64 of A-Z a-z 0-9 . _ -'),
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535),
  role: z.enum(['all', 'api', 'replica']).default('all'),
  db: z.string().min(1),
  kafka: z.object({
    brokers: brokerList,
    ssl: z.boolean().default(false),
    sasl: z
      .object({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
        username: z.string(),
        password: z.string(),
      })
      .optional(),
  }),
  topic: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .default(DEFAULTS.topic),
  partitions: z.coerce.number().int().min(1).max(10_000).default(DEFAULTS.partitions),
  replicationFactor: z.coerce.number().int().min(1).max(16).default(DEFAULTS.replicationFactor),
  minInsyncReplicas: z.coerce.number().int().min(1).max(16).default(DEFAULTS.minInsyncReplicas),
  maxValueBytes: z.coerce.number().int().min(1).default(DEFAULTS.maxValueBytes),
  /** Producer linger: how long a write waits for others to share its Kafka round trip. */
  lingerMs: z.coerce.number().int().min(0).max(1000).default(2),
  /**
   * Deadline of a strict write (per request: ?timeoutMs=): long enough to ride out a partition leader
   * failover (the local cluster's is ~3-4 s). After it the client gets 503 (definite) or 504 (unknown).
   */
  writeTimeoutMs: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /**
   * How long a read-side Kafka request (fetch, ListOffsets, group lag) may go without a byte back before its
   * connection is given up as stalled (a frozen broker). Raise it for links slower than a few seconds round trip.
   */
  kafkaStallMs: z.coerce.number().int().min(500).max(120_000).default(3000),
  /** Most ops one POST /v1/batch may carry. */
  maxBatchOps: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** Default wait bound for session/bounded/strong reads and conditional writes (also rides out a failover). */
  readTimeoutMs: z.coerce.number().int().min(0).max(120_000).default(10_000),
  /** How often the node refreshes partition end offsets (lag, staleness). */
  offsetRefreshMs: z.coerce.number().int().min(50).max(60_000).default(500),
  /** Other nodes' base URLs (digest agreement on the dashboard). */
  peers: z.array(z.url()).default([]),
  /** Shared JSON-lines events file (the local cluster's data dir); absent → in-memory events only. */
  eventsFile: z.string().optional(),
  /** Heartbeat records on idle partitions, every this many ms; 0 turns them off. */
  heartbeatMs: z.coerce.number().int().min(0).max(60_000).default(2000),
  /**
   * What a write does when Kafka cannot take it: `strict` answers 503/504; `buffered` keeps it in the node's
   * durable outbox and answers 202. The default for requests without a `Lagoon-Write-Mode` header.
   */
  writeMode: z.enum(['strict', 'buffered']).default('strict'),
  /** Most records the outbox holds; a buffered write beyond it is refused (503 outbox_full, definite). */
  outboxMax: z.coerce.number().int().min(1).max(100_000_000).default(100_000),
  /** The outbox's SQLite file; default: next to `db` (`lagoon.db` → `lagoon.outbox.db`). */
  outboxDb: z.string().min(1).optional(),
  /**
   * Log-time retention of the replica's bookkeeping (write verdicts, idempotency keys). Every replica must use
   * the same value (the store is bound to it). At least the write-id window (15 min), so a remembered write id
   * always points at a verdict that is still there.
   */
  bookkeepingRetentionMs: z.coerce
    .number()
    .int()
    .min(WID_WINDOW_MS)
    .max(366 * 24 * 3600 * 1000)
    .default(BOOKKEEPING_RETENTION_MS),
  /**
   * The topic's retention (`retention.ms` of a topic this node creates; `lagoon up --retention`): records older
   * than this are deleted from the log. A replica can be rebuilt only from a snapshot younger than it.
   */
  retentionMs: z.coerce
    .number()
    .int()
    .min(1000)
    .max(100 * 366 * 24 * 3600 * 1000)
    .default(DEFAULTS.retentionMs),
  /** How often the node snapshots its replica (and the snapshots it keeps); see retention safety below. */
  snapshotIntervalMs: z.coerce.number().int().min(500).default(DEFAULTS.snapshotIntervalMs),
  snapshotKeep: z.coerce.number().int().min(1).max(1000).default(3),
  /** Where snapshots are kept; default: `snapshots/` next to `db`. */
  snapshotDir: z.string().min(1).optional(),
  /** `--bootstrap`: install a peer's snapshot at start even if the store is not empty (when it is newer). */
  bootstrap: z.boolean().default(false),
  /** LOG_LEVEL: the node's structured log (state changes at info; per-request lines at debug). */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /**
   * How long a SIGTERMed node may take to stop in order (answer in-flight requests, flush the producer, apply the
   * last fetch, close SQLite) before it exits anyway. The store is consistent at every commit, so a forced exit
   * loses no acknowledged write; it only skips the orderly goodbyes.
   */
  shutdownTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /**
   * LAGOON_API_TOKENS: comma-separated `name:token:scopes` (scopes joined by + from read, write, admin); empty:
   * authentication off. Every node of a cluster is given the same list (a node calls its peers with a token of
   * it that has `read`). Parsed into tokens whose values stay out of JSON, logs and error messages.
   */
  apiTokens: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const r = parseApiTokens(s);
      if (r.ok) return r.tokens;
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }),
  /** Test only (LAGOON_TEST_BREAK): deliberately broken guarantees, see src/testing/breaks.ts. */
  testBreaks: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(BREAKS))),
  /** Test only (LAGOON_TEST_APPLY_DELAY_MS): a slow replica, waiting this long before each applied batch. */
  testApplyDelayMs: z.coerce.number().int().min(0).max(60_000).default(0),
});

export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/**
 * Retention safety: a replica can be rebuilt as long as some snapshot is younger than the log's retention (the
 * log still holds everything after its offsets). The newest snapshot is at most one interval old, and one
 * snapshot may fail: the interval must be at most half the retention.
 */
export function retentionProblem(
  c: Pick<NodeConfig, 'retentionMs' | 'snapshotIntervalMs'>,
): string | undefined {
  if (c.snapshotIntervalMs * 2 <= c.retentionMs) return undefined;
  return (
    `snapshots every ${c.snapshotIntervalMs} ms cannot keep one younger than the log's retention of ${c.retentionMs} ms ` +
    '(the interval must be at most half the retention): lower LAGOON_SNAPSHOT_INTERVAL_MS or raise --retention'
  );
}

/** Parses raw options (CLI flags merged over LAGOON_* env) into a NodeConfig, or throws a readable error. */
export function parseNodeConfig(raw: unknown): NodeConfig {
  const r = NodeConfigSchema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ');
    throw new LagoonError('bad_config', `Invalid node configuration: ${msg}`);
  }
  const unsafe = retentionProblem(r.data);
  if (unsafe !== undefined) throw new LagoonError('bad_config', `Invalid node configuration: ${unsafe}`);
  return r.data;
}

/** The LAGOON_* environment variables a node understands, as raw config fields. */
export function nodeEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const pick = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  return {
    topic: pick('LAGOON_TOPIC'),
    partitions: pick('LAGOON_PARTITIONS'),
    replicationFactor: pick('LAGOON_REPLICATION_FACTOR'),
    minInsyncReplicas: pick('LAGOON_MIN_INSYNC_REPLICAS'),
    maxValueBytes: pick('LAGOON_MAX_VALUE_BYTES'),
    lingerMs: pick('LAGOON_LINGER_MS'),
    writeTimeoutMs: pick('LAGOON_WRITE_TIMEOUT_MS'),
    maxBatchOps: pick('LAGOON_MAX_BATCH_OPS'),
    kafkaStallMs: pick('LAGOON_KAFKA_STALL_MS'),
    readTimeoutMs: pick('LAGOON_READ_TIMEOUT_MS'),
    heartbeatMs: pick('LAGOON_HEARTBEAT_MS'),
    writeMode: pick('LAGOON_WRITE_MODE'),
    outboxMax: pick('LAGOON_OUTBOX_MAX'),
    bookkeepingRetentionMs: pick('LAGOON_BOOKKEEPING_RETENTION_MS'),
    retentionMs: pick('LAGOON_RETENTION_MS'),
    snapshotIntervalMs: pick('LAGOON_SNAPSHOT_INTERVAL_MS'),
    snapshotKeep: pick('LAGOON_SNAPSHOT_KEEP'),
    snapshotDir: pick('LAGOON_SNAPSHOT_DIR'),
    apiTokens: pick('LAGOON_API_TOKENS'),
    logLevel: pick('LOG_LEVEL')?.toLowerCase(),
    shutdownTimeoutMs: pick('LAGOON_SHUTDOWN_TIMEOUT_MS'),
    testBreaks: pick('LAGOON_TEST_BREAK'),
    testApplyDelayMs: pick('LAGOON_TEST_APPLY_DELAY_MS'),
    brokers: pick('LAGOON_KAFKA_BROKERS'),
    ssl: pick('LAGOON_KAFKA_SSL') === 'true',
    saslMechanism: pick('LAGOON_KAFKA_SASL_MECHANISM'),
    saslUsername: pick('LAGOON_KAFKA_SASL_USERNAME'),
    saslPassword: pick('LAGOON_KAFKA_SASL_PASSWORD'),
  };
}
