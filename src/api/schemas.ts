import { z } from 'zod';

/** zod schemas: the single source of request validation and of the OpenAPI document. */

export const Consistency = z.enum(['eventual', 'session', 'bounded', 'strong']);
export type Consistency = z.infer<typeof Consistency>;

/**
 * An integer query parameter, written in plain decimal: `0x10`, `1e3`, ` 5` or `5.0` are refused rather than
 * coerced (a strict reading, so that what the client meant is never guessed). Documented as an integer.
 */
const DECIMAL_RE = /^-?(0|[1-9][0-9]{0,15})$/;
const intString = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && DECIMAL_RE.test(v) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );

export const ReadQuery = z
  .object({
    consistency: Consistency.default('eventual'),
    maxStaleMs: intString(0, 86_400_000).optional().describe('bounded: serve only if staleness ≤ this'),
    maxLag: intString(0, Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('bounded: serve only if lag in records ≤ this'),
    timeoutMs: intString(0, 60_000).optional().describe('how long to wait for the replica to catch up'),
  })
  .strict();

export const SnapshotQuery = z
  .object({
    maxAgeMs: intString(0, Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('serve the newest snapshot no older than this (ms); none that young: one is taken now'),
  })
  .strict();

export const ScanQuery = ReadQuery.extend({
  // The patterns document what the handler checks (a key's rules; a cursor this API handed out).
  prefix: z
    .string()
    .meta({
      description: 'only keys starting with this (1024 bytes of UTF-8 at most, no control characters)',
      maxLength: 1024,
      pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$',
    })
    .default(''),
  limit: intString(1, 1000).default(100),
  cursor: z
    .string()
    .max(2000)
    .meta({ description: 'nextCursor of the previous page', pattern: '^[A-Za-z0-9_-]+$' })
    .optional(),
}).strict();

/** Routes that take no query parameters: an unknown one is a 400, not silently ignored. */
export const NoQuery = z.object({}).strict();

export const WriteQuery = z
  .object({
    ttl: intString(1, 10 * 365 * 86_400)
      .optional()
      .describe('seconds until the value expires (log time)'),
    // At least 100 ms (as LAGOON_WRITE_TIMEOUT_MS): a deadline of 0 could never be met, and its refusal would
    // read as Kafka's fault (503) when it is the request's.
    timeoutMs: intString(100, 60_000)
      .optional()
      .describe(
        "the write's deadline, 100–60000 ms (default LAGOON_WRITE_TIMEOUT_MS) and, for a conditional write, how long to wait for the verdict",
      ),
  })
  .strict();

export const WriteResult = z.object({
  key: z.string(),
  version: z.string().describe('log position "partition-offset"; also the ETag'),
  partition: z.number().int(),
  offset: z.number().int(),
  status: z
    .enum(['acknowledged', 'applied'])
    .describe('acknowledged by Kafka (plain) or applied by the replica (conditional)'),
  deleted: z.boolean().optional(),
});

export const PendingWrite = z.object({
  key: z.string(),
  version: z.string(),
  partition: z.number().int(),
  offset: z.number().int(),
  status: z.literal('pending'),
  href: z.string(),
});

export const Item = z.object({
  key: z.string(),
  value: z.unknown(),
  version: z.string(),
  updatedAt: z.number().int().describe('log time of the write, ms since epoch'),
  expiresAt: z.number().int().nullable().optional(),
});

export const ScanResult = z.object({ items: z.array(Item), nextCursor: z.string().nullable() });

export const WriteOutcomeView = z.object({
  version: z.string().nullable().describe('the log position; null for a write still buffered'),
  id: z.string().optional().describe('the buffered write id asked about'),
  status: z.enum(['buffered', 'applied', 'rejected', 'duplicate', 'pending', 'unknown']),
  key: z.string().nullable().optional(),
  reason: z.string().nullable().optional(),
  bufferedAt: z.number().int().optional().describe('buffered writes: when this node took it (ms)'),
  sentAt: z.number().int().optional().describe('buffered writes: when the log took it (ms)'),
});

export const BufferedWrite = z.object({
  status: z.literal('buffered'),
  id: z.string().describe('"ob-…": poll GET /v1/writes/{id} on this node'),
  key: z.string(),
  partition: z.number().int(),
  bufferedAt: z.number().int().describe('ms since epoch'),
  href: z.string(),
});

export const BufferedItem = z.object({
  key: z.string(),
  value: z.unknown(),
  version: z.null(),
  buffered: z.literal(true),
  id: z.string(),
  bufferedAt: z.number().int(),
});

export const PartitionStatus = z.object({
  partition: z.number().int(),
  appliedOffset: z.number().int(),
  endOffset: z.number().int(),
  lagRecords: z.number().int(),
  stalenessMs: z.number().nullable(),
  recordsApplied: z.number().int(),
});

export const NodeStatus = z.object({
  node: z.string(),
  role: z.string(),
  topic: z.string(),
  replica: z.object({
    state: z.string(),
    group: z.string(),
    lastError: z.string().nullable(),
    /** Set when the replica refused its log (another topic or cluster, a log ending below its offsets). */
    problem: z.object({ code: z.string(), message: z.string() }).nullable().optional(),
    /** Records found in a partition their key does not belong to (never applied). */
    misrouted: z.object({ count: z.number().int(), last: z.string().nullable() }).optional(),
  }),
  /** Why this node takes no writes because of its topic (unchecked, missing, unsafe), or null. */
  topicProblem: z.string().nullable().optional(),
  partitions: z.array(PartitionStatus),
  brokers: z.object({
    reachable: z.boolean(),
    seen: z.array(z.number().int()),
    lastError: z.string().nullable(),
  }),
  writeMode: z.enum(['strict', 'buffered']).describe('default for writes without Lagoon-Write-Mode'),
  outboxDepth: z.number().int().describe("buffered writes waiting in this node's outbox"),
  outbox: z.object({
    records: z.number().int(),
    oldestSeconds: z.number().describe('age of the oldest waiting write, 0 when empty'),
    max: z.number().int().describe('LAGOON_OUTBOX_MAX: beyond it, 503 outbox_full'),
  }),
  bookkeepingRetentionMs: z
    .number()
    .int()
    .describe('log-time retention of write verdicts and idempotency keys (the same on every replica)'),
});

export const Digest = z.object({
  node: z.string(),
  partitions: z.array(
    z.object({ partition: z.number().int(), appliedOffset: z.number().int(), digest: z.string() }),
  ),
});

export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  retryable: z.boolean(),
  definite: z.boolean(),
  instance: z.string().optional(),
});

/** One op of POST /v1/batch. */
export const BatchOp = z
  .object({
    op: z.enum(['put', 'delete']),
    key: z.string().min(1).max(4096).describe('UTF-8 key, 1–1024 bytes'),
    value: z.unknown().optional().describe('the JSON value (put only)'),
    ifMatch: z
      .string()
      .max(300)
      .optional()
      .describe('apply only if the current version is this one ("3-1042") or, "*", if the key exists'),
    ifNoneMatch: z
      .union([z.literal('*'), z.literal(true)])
      .optional()
      .describe('"*" or true: create only'),
    ttl: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86_400)
      .optional()
      .describe('seconds until the value expires (put only)'),
  })
  .strict();

export const BatchBody = z
  .object({
    ops: z.array(BatchOp).min(1).max(10_000).describe('at most LAGOON_MAX_BATCH_OPS (default 1000)'),
  })
  .strict();

export const BatchQuery = z
  .object({
    timeoutMs: intString(100, 60_000)
      .optional()
      .describe(
        "the batch's deadline, 100–60000 ms (default LAGOON_WRITE_TIMEOUT_MS) and how long to wait for its verdict",
      ),
  })
  .strict();

export const BatchOpResult = z.object({
  key: z.string(),
  version: z
    .string()
    .describe("the version the key has once the batch applied (its part record's log position)"),
  partition: z.number().int(),
  offset: z.number().int(),
});

export const BatchResult = z.object({
  batch: z.string().describe('batch id: GET /v1/batches/{id}'),
  status: z.enum(['applied', 'pending']),
  href: z.string().optional(),
  ops: z.array(BatchOpResult).describe('in request order'),
});

export const BatchOutcomeView = z.object({
  batch: z.string(),
  status: z.enum(['applied', 'rejected', 'pending']),
  reason: z
    .string()
    .nullable()
    .describe(
      'why rejected: a condition (version_mismatch, already_exists, not_found), batch_conflict, deadline_passed',
    ),
  op: z.number().int().nullable().describe('index of the op whose condition failed'),
});
