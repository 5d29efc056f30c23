import type { z } from 'zod';
import type * as S from '../api/schemas.js';
import type { LagReport } from '../lag/types.js';

/**
 * The client's wire types, derived from the zod schemas the server validates with and builds /openapi.json from
 * (src/api/schemas.ts). Type-only imports: nothing of zod or the server is loaded at run time, so the client
 * runs anywhere `fetch` does. test/unit/client/contract.test.ts fails when these and the OpenAPI document drift.
 */

export type Consistency = z.infer<typeof S.Consistency>;

/** A stored item as GET /v1/kv/{key} and scans answer it; `T` is what the caller says its values are. */
export type Item<T = unknown> = Omit<z.infer<typeof S.Item>, 'value'> & { value: T };
export type WriteResultBody = z.infer<typeof S.WriteResult>;
export type PendingWriteBody = z.infer<typeof S.PendingWrite>;
export type BufferedWriteBody = z.infer<typeof S.BufferedWrite>;
export type ScanResultBody = z.infer<typeof S.ScanResult>;
export type WriteOutcomeBody = z.infer<typeof S.WriteOutcomeView>;
export type BatchOp = z.infer<typeof S.BatchOp>;
export type BatchBody = z.infer<typeof S.BatchBody>;
export type BatchResultBody = z.infer<typeof S.BatchResult>;
export type BatchOpResult = z.infer<typeof S.BatchOpResult>;
export type BatchOutcomeBody = z.infer<typeof S.BatchOutcomeView>;
export type NodeStatus = z.infer<typeof S.NodeStatus>;
/** A problem+json body: the fixed fields, and the error's details spread at the top level. */
export type ProblemFields = z.infer<typeof S.ProblemSchema>;
export type ProblemBody = ProblemFields & Record<string, unknown>;
/** GET /v1/lag: not a zod schema (the dashboard's feed); typed from the server's own interface. */
export type { LagReport };

/** Query fields of reads, scans and writes, as the server parses them. */
export type ReadQueryFields = z.infer<typeof S.ReadQuery>;
export type ScanQueryFields = z.infer<typeof S.ScanQuery>;
export type WriteQueryFields = z.infer<typeof S.WriteQuery>;
export type BatchQueryFields = z.infer<typeof S.BatchQuery>;

/** Options every call takes. */
export interface CallOptions {
  /** Cancels the call, retries included. */
  signal?: AbortSignal;
  /** Send the first attempt to this node (one of the client's URLs, or any other); failover still applies. */
  node?: string;
}

/** GET /v1/kv/{key}: the read level and its bounds (the server's defaults apply to what is left out). */
export type ReadOptions = Partial<ReadQueryFields> & CallOptions;

/** GET /v1/kv: a scan's prefix, page size and start, at a read level. */
export type ScanOptions = Partial<ScanQueryFields> & CallOptions;

/** PUT and DELETE /v1/kv/{key}. */
export type WriteOptions = Partial<WriteQueryFields> &
  CallOptions & {
    /** Apply only if the current version is this one (`"3-1042"`, with or without quotes), or `*`: if it exists. */
    ifMatch?: string;
    /** Create only: apply only if the key does not exist. */
    ifNoneMatch?: boolean;
    /** The write's Idempotency-Key; the client makes a fresh one per call when left out. */
    idempotencyKey?: string;
  };

/**
 * A strict write (the client's default, whatever the node's LAGOON_WRITE_MODE): applied, or an error.
 * `writeMode: 'buffered'` lets the node keep the write in its durable outbox when Kafka cannot take it (202).
 */
export type StrictWriteOptions = WriteOptions & { writeMode?: 'strict' };
export type BufferedWriteOptions = WriteOptions & { writeMode: 'buffered' };

/** POST /v1/batch. */
export type BatchOptions = Partial<BatchQueryFields> & CallOptions;

/** `update()`: how the current value is read, and how often a lost race is retried. */
export type UpdateOptions = Partial<Pick<ReadQueryFields, 'timeoutMs'>> &
  Pick<WriteOptions, 'ttl' | 'signal' | 'node'> & {
    /** Read level of the read before each attempt: strong (default) or session. */
    consistency?: 'strong' | 'session';
    /** Attempts before giving up with 412 update_conflict; default 10. */
    maxAttempts?: number;
  };

/**
 * What every answer says about where it came from and how fresh it is. `lagRecords` and `stalenessMs` are the
 * node's upper bounds for the partitions read, null when the node does not know (it said "unknown") or the
 * answer carries none (writes, status).
 */
export interface ResponseMeta {
  /** Base URL of the node that answered (not `node`: /v1/status and /v1/lag bodies have a `node`, its id). */
  nodeUrl: string;
  /** Lagoon-Served-By: the node id that served a read; null on answers without it. */
  servedBy: string | null;
  lagRecords: number | null;
  stalenessMs: number | null;
  /** Requests this call sent (1 when nothing was retried). */
  attempts: number;
}

/** A read's answer: the item, or that there is none, with the read's freshness. */
export type GetResult<T = unknown> = ResponseMeta & { consistency: Consistency | null } & (
    | ({ found: true } & Item<T>)
    | { found: false; key: string; value: undefined; version: null }
  );

/** One page of a scan. */
export type ScanPage<T = unknown> = ResponseMeta & {
  consistency: Consistency | null;
  items: Item<T>[];
  nextCursor: string | null;
};

/**
 * A write's answer. Client writes carry an Idempotency-Key, so the node answers once its replica has decided
 * them: `status` is `applied` (plain writes the server answers at Kafka's ack are `acknowledged`).
 * `replayed`: the answer is an earlier attempt's outcome (Idempotent-Replayed: true).
 */
export type WriteResult = WriteResultBody & ResponseMeta & { idempotencyKey: string; replayed: boolean };

/** A buffered write (only with `writeMode: 'buffered'`): kept in the node's outbox, poll `href` on that node. */
export type BufferedWriteResult = BufferedWriteBody & ResponseMeta & { idempotencyKey: string };

/**
 * A batch that applied. `ops` (versions per op, in request order) is absent only when the node could not say
 * whether its commit went through (504) and the client learned the verdict by asking for it afterwards.
 */
export type BatchResult = Omit<BatchResultBody, 'status' | 'href' | 'ops'> &
  ResponseMeta & { status: 'applied'; ops?: BatchResultBody['ops'] };

/** `update()`'s answer: the write that won, and the value written. */
export type UpdateResult<T> = WriteResult & { value: T; updateAttempts: number };

export type StatusResult = NodeStatus & ResponseMeta;
export type LagResult = LagReport & ResponseMeta;
