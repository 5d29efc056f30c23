import { z } from 'zod';
import type { NodeConfig } from '../config.js';
import { SNAPSHOT_CONTENT_TYPE } from '../store/snapshot.js';
import { requiredScope } from './auth.js';
import {
  BatchBody,
  BatchOutcomeView,
  BatchQuery,
  BatchResult,
  BufferedItem,
  BufferedWrite,
  Digest,
  Item,
  NodeStatus,
  NoQuery,
  PendingWrite,
  ProblemSchema,
  ReadQuery,
  ScanQuery,
  ScanResult,
  SnapshotQuery,
  WriteOutcomeView,
  WriteQuery,
  WriteResult,
} from './schemas.js';

type Json = Record<string, unknown>;

const schema = (s: z.ZodType): Json => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;

function queryParams(s: z.ZodObject): Json[] {
  const js = schema(s) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, p]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    schema: p,
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
  }));
}

const json = (s: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema: schema(s) } },
});
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: schema(ProblemSchema) } },
});
/**
 * Refusals any route may answer before it runs (src/api/limits.ts): a header flood, a sender too slow to finish
 * its request. Nothing was done.
 */
const transportProblems = {
  408: problem(
    'request_timeout: the headers did not arrive within 10 s, or the whole request within 30 s; the connection is closed',
  ),
  431: problem('headers_too_large (over 16 KiB of headers) or too_many_headers (more than 128)'),
};
/** One snapshot as listed (src/api/routes-snapshot.ts): file name, size, manifest (src/store/snapshot.ts). */
const snapshotItem = {
  type: 'object',
  required: ['name', 'size', 'manifest'],
  properties: {
    name: { type: 'string' },
    size: { type: 'integer', minimum: 0 },
    manifest: {
      type: 'object',
      required: ['format', 'node', 'topic', 'schemaVersion', 'partitions', 'createdAt', 'bytes', 'sha256'],
      properties: {
        format: { const: 1 },
        node: { type: 'string' },
        topic: { type: 'string' },
        topicId: { type: ['string', 'null'] },
        clusterId: { type: ['string', 'null'] },
        schemaVersion: { type: 'integer' },
        partitions: {
          type: 'array',
          items: {
            type: 'object',
            required: ['partition', 'appliedOffset', 'digest'],
            properties: {
              partition: { type: 'integer', minimum: 0 },
              appliedOffset: { type: 'integer', minimum: 0 },
              digest: { type: 'string', pattern: '^[0-9a-f]{32}$' },
            },
          },
        },
        createdAt: { type: 'string' },
        bytes: { type: 'integer', minimum: 0 },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      },
    },
  },
};
const keyParam = {
  name: 'key',
  in: 'path',
  required: true,
  schema: { type: 'string', minLength: 1, maxLength: 1024, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' },
  description:
    'URL-encoded UTF-8 key, 1–1024 bytes, no control characters (U+0000–U+001F, U+007F–U+009F), no lone surrogates; anything else, or a path that is not valid percent-encoded UTF-8, is 400 invalid_key',
};
/** What the request headers accept (src/core/version.ts, session.ts, routes-kv.ts); anything else is a 400. */
const headerSchemas: Record<string, Json> = {
  'If-Match': {
    type: 'string',
    pattern: '^(\\*|"(0|[1-9][0-9]{0,8})-(0|[1-9][0-9]{0,14})"|(0|[1-9][0-9]{0,8})-(0|[1-9][0-9]{0,14}))$',
  },
  'If-None-Match': { type: 'string', enum: ['*'] },
  'Idempotency-Key': { type: 'string', pattern: '^[!-~]{1,256}$' },
  // Empty reads as no session.
  'Lagoon-Session': { type: 'string', maxLength: 4096, pattern: '^(s1\\.[A-Za-z0-9_-]*)?$' },
};
const header = (name: string, description: string) => ({
  name,
  in: 'header',
  required: false,
  schema: headerSchemas[name] ?? { type: 'string' },
  description,
});
const readHeaders = {
  ETag: { schema: { type: 'string' } },
  'Lagoon-Served-By': { schema: { type: 'string' } },
  'Lagoon-Lag-Records': {
    schema: { type: 'string' },
    description: 'upper bound on records not yet applied, or "unknown" (no recent end offset from Kafka)',
  },
  'Lagoon-Staleness-Ms': { schema: { type: 'string' }, description: 'upper bound in ms, or "unknown"' },
  'Lagoon-Consistency': { schema: { type: 'string' } },
  'Lagoon-Session': { schema: { type: 'string' } },
  'Lagoon-Read-Source': {
    schema: { type: 'string', enum: ['outbox', 'replica'] },
    description:
      "with Lagoon-Read-Buffered: true — outbox when the answer is this node's latest buffered write",
  },
};

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
export function openApiDocument(config: NodeConfig): Json {
  const writeParams = [
    keyParam,
    ...queryParams(WriteQuery),
    header('If-Match', '"<version>" or *: apply only if the current version matches'),
    header('If-None-Match', '*: create only'),
    header('Idempotency-Key', 'retries with the same key are applied once'),
    header('Lagoon-Session', 'session token to extend'),
    {
      ...header(
        'Lagoon-Write-Mode',
        "strict (503/504 when Kafka cannot take the write) or buffered (kept in the node's durable outbox: 202 + /v1/writes/{id}); default: the node's LAGOON_WRITE_MODE",
      ),
      schema: { type: 'string', enum: ['strict', 'buffered'] },
    },
  ];
  const writeResponses = {
    200: {
      ...json(WriteResult, 'Acknowledged by Kafka (acks=all), or applied (conditional)'),
      headers: {
        ETag: { schema: { type: 'string' } },
        'Lagoon-Session': { schema: { type: 'string' } },
        'Idempotent-Replayed': {
          schema: { type: 'string', enum: ['true'] },
          description:
            'present when the answer is the outcome of an earlier request with the same Idempotency-Key',
        },
      },
    },
    202: {
      description:
        'Conditional write not decided in time (status pending; poll href), or a buffered write kept in the outbox because Kafka could not take it (status buffered; Location: /v1/writes/{id})',
      content: {
        'application/json': { schema: { oneOf: [schema(PendingWrite), schema(BufferedWrite)] } },
      },
      headers: { Location: { schema: { type: 'string' } } },
    },
    400: problem(
      'Nothing written. invalid_key; invalid_json (malformed, truncated or empty body, bytes that are not UTF-8); invalid_value (not representable JSON, e.g. 1e400 or nesting deeper than 1000); unsafe_integer (an integer beyond ±(2^53−1)); invalid_query (unknown parameter, a parameter given twice, ttl / timeoutMs not a decimal integer in range, ttl on DELETE, not valid percent-encoded UTF-8); invalid_if_match; invalid_if_none_match (only *); conflicting_conditions (If-Match with If-None-Match); invalid_idempotency_key (1–256 visible ASCII characters); invalid_write_mode (strict|buffered); invalid_session (malformed Lagoon-Session); unexpected_body (a DELETE with a body)',
    ),
    412: problem('Condition not met'),
    413: problem('value_too_large: the body is over LAGOON_MAX_VALUE_BYTES'),
    415: problem(
      'unsupported_media_type: not application/json, a charset other than UTF-8, or a Content-Encoding',
    ),
    422: problem(
      'idempotency_key_reused: this Idempotency-Key was used for a different request; nothing written',
    ),
    503: problem(
      'Definite, nothing written; Retry-After set: kafka_unavailable (no broker reachable, or ISR below min.insync.replicas), topic_unsafe, overloaded, outbox_full (buffered: LAGOON_OUTBOX_MAX writes already waiting), buffered_writes_pending (strict: earlier buffered writes to the key did not reach the log in time)',
    ),
    504: problem('Outcome unknown (indefinite): retry with the same Idempotency-Key'),
    ...transportProblems,
  };
  const doc: Json = {
    openapi: '3.1.0',
    info: {
      title: 'Lagoon',
      version: '0.1.0',
      description: `Eventually consistent key-value store on Kafka topic '${config.topic}' (${config.partitions} partitions) with SQLite replicas.`,
    },
    paths: {
      '/v1/kv/{key}': {
        get: {
          summary: 'Read one key at a consistency level',
          parameters: [
            keyParam,
            ...queryParams(ReadQuery),
            header('Lagoon-Session', 'token for consistency=session'),
            {
              ...header(
                'Lagoon-Read-Buffered',
                "true: a key with writes waiting in this node's outbox reads as the latest of them (404 for a buffered delete), marked Lagoon-Read-Source: outbox",
              ),
              schema: { type: 'string', enum: ['true', 'false'] },
            },
          ],
          responses: {
            200: {
              description: 'The value (from the replica; or from the outbox with Lagoon-Read-Buffered: true)',
              content: { 'application/json': { schema: { oneOf: [schema(Item), schema(BufferedItem)] } } },
              headers: readHeaders,
            },
            400: problem(
              'invalid_key; invalid_query (unknown or repeated parameter, value out of range); conflicting_query (maxStaleMs / maxLag without consistency=bounded); missing_bound (bounded without maxStaleMs or maxLag); invalid_session (malformed Lagoon-Session); invalid_read_buffered (true|false)',
            ),
            404: { ...problem('No such key'), headers: readHeaders },
            503: problem(
              "Bound not met, or Kafka unreachable (strong); replica_bootstrapping (the replica is being rebuilt from a snapshot, or starts empty and has not checked the log yet); replica_gap (records of the key's partition, or of any partition for a scan, were deleted by retention before this replica applied them)",
            ),
            504: problem('Replica did not catch up in time (session, strong)'),
            ...transportProblems,
          },
        },
        put: {
          summary: 'Write a JSON value',
          parameters: writeParams,
          requestBody: { required: true, content: { 'application/json': { schema: {} } } },
          responses: writeResponses,
        },
        delete: {
          summary: 'Delete a key (tombstone)',
          parameters: writeParams.filter((p) => p.name !== 'ttl'),
          responses: writeResponses,
        },
      },
      '/v1/kv': {
        get: {
          summary: 'Ordered scan with cursor pagination',
          parameters: [...queryParams(ScanQuery), header('Lagoon-Session', 'token for consistency=session')],
          responses: {
            200: { ...json(ScanResult, 'A page of items'), headers: readHeaders },
            400: problem(
              'invalid_query (unknown or repeated parameter, limit not 1–1000, not valid percent-encoded UTF-8); invalid_prefix (control characters, lone surrogates, over 1024 bytes); invalid_cursor (not one this API returned, or from a scan with another prefix); conflicting_query; missing_bound; invalid_session',
            ),
            503: problem(
              "Bound not met, or Kafka unreachable (strong); replica_bootstrapping (the replica is being rebuilt from a snapshot, or starts empty and has not checked the log yet); replica_gap (records of the key's partition, or of any partition for a scan, were deleted by retention before this replica applied them)",
            ),
            504: problem('Replica did not catch up in time (session, strong)'),
            ...transportProblems,
          },
        },
      },
      '/v1/writes/{version}': {
        get: {
          summary: 'Outcome of a write, by version or by buffered write id',
          parameters: [
            {
              name: 'version',
              in: 'path',
              required: true,
              schema: {
                type: 'string',
                pattern: '^((0|[1-9][0-9]{0,8})-(0|[1-9][0-9]{0,14})|ob-[A-Za-z0-9_-]{16})$',
              },
              description:
                'a version "partition-offset", or the id "ob-…" of a buffered write (ask the node that took it)',
            },
          ],
          responses: {
            200: json(
              WriteOutcomeView,
              'applied (with version) / rejected (with reason) / duplicate / pending / unknown; for a buffered id also buffered (still in the outbox)',
            ),
            400: problem(
              'invalid_version: neither a version of this store ("partition-offset", partition below the partition count) nor a buffered write id; invalid_query: any query parameter',
            ),
            404: problem('unknown_write: this node has no buffered write with that id'),
            ...transportProblems,
          },
        },
      },
      '/v1/batch': {
        post: {
          summary: 'Atomic batch of puts and deletes: one Kafka transaction, all or nothing on every replica',
          parameters: [
            ...queryParams(BatchQuery),
            header('Lagoon-Session', 'merged with the positions of the batch'),
          ],
          requestBody: { required: true, content: { 'application/json': { schema: schema(BatchBody) } } },
          responses: {
            200: {
              ...json(BatchResult, 'Applied: every op, on every replica, at once'),
              headers: {
                'Lagoon-Session': {
                  schema: { type: 'string' },
                  description: "merged with every part's position",
                },
              },
            },
            202: {
              ...json(BatchResult, 'Committed; the verdict is not in yet (GET /v1/batches/{id})'),
              headers: {
                Location: { schema: { type: 'string' } },
                'Lagoon-Session': { schema: { type: 'string' } },
              },
            },
            400: problem(
              'Nothing applied. invalid_batch (shape: not {ops:[…]}, no ops, unknown op or field, put without value, delete with value or ttl, bad ttl), batch_too_large (more than LAGOON_MAX_BATCH_OPS ops), batch_duplicate_key, invalid_key, invalid_if_match, conflicting_conditions, invalid_write_mode (only strict), unsupported_header (Idempotency-Key, If-Match or If-None-Match on a batch), invalid_session, invalid_query, invalid_json / invalid_value / unsafe_integer',
            ),
            409: problem(
              'batch_conflict: lost a wait-for cycle against another batch; nothing applied, retry',
            ),
            412: problem(
              "precondition_failed: an op's condition failed (details.op, details.reason); nothing applied",
            ),
            413: problem(
              "Body over the limit, or one partition's share over 1,000,000 bytes (batch_too_large)",
            ),
            415: problem(
              'unsupported_media_type: not application/json, a charset other than UTF-8, or a Content-Encoding',
            ),
            503: problem(
              'Definite, nothing applied: kafka_unavailable, topic_unsafe, overloaded, buffered_writes_pending, write_deadline_passed',
            ),
            504: problem(
              'write_outcome_unknown: the commit was not acknowledged; GET /v1/batches/{id} (details.href)',
            ),
            ...transportProblems,
          },
        },
      },
      '/v1/batches/{id}': {
        get: {
          summary: "Verdict on a batch, as this node's replica decided it",
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,256}$' },
            },
          ],
          responses: {
            200: json(BatchOutcomeView, 'applied / rejected (with reason and op) / pending'),
            400: problem('invalid_batch_id: not a batch id; invalid_query: any query parameter'),
            ...transportProblems,
          },
        },
      },
      '/v1/status': {
        get: {
          summary: 'Node status, per-partition offsets and lag',
          responses: { 200: json(NodeStatus, 'Status') },
        },
      },
      '/v1/digest': {
        get: {
          summary: 'Per-partition digest of replica state',
          responses: { 200: json(Digest, 'Digests') },
        },
      },
      '/v1/snapshot': {
        get: {
          summary:
            "The newest snapshot of this replica (taken now if none is as young as maxAgeMs): a magic line 'LAGOON-SNAPSHOT 1', the manifest as one JSON line, then the gzipped SQLite database",
          parameters: queryParams(SnapshotQuery),
          responses: {
            200: {
              description: 'The snapshot',
              content: { [SNAPSHOT_CONTENT_TYPE]: { schema: { type: 'string', format: 'binary' } } },
              headers: { 'Lagoon-Snapshot-Created': { schema: { type: 'string' } } },
            },
            400: problem('invalid_query'),
            404: problem('no_replica: this node has no replica (role api)'),
            503: problem(
              'snapshot_unavailable: the replica is bootstrapping, has a gap, refused its log or is not running',
            ),
            ...transportProblems,
          },
        },
      },
      '/v1/snapshots': {
        get: {
          summary: "This node's snapshots, newest first",
          parameters: queryParams(NoQuery),
          responses: {
            200: {
              description: 'Snapshots kept in the data dir',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['node', 'snapshots'],
                    properties: {
                      node: { type: 'string' },
                      snapshots: { type: 'array', items: snapshotItem },
                    },
                  },
                },
              },
            },
            400: problem('invalid_query'),
            404: problem('no_replica: this node has no replica (role api)'),
            ...transportProblems,
          },
        },
        post: {
          summary: 'Take a snapshot now (admin)',
          parameters: queryParams(NoQuery),
          responses: {
            201: {
              description: 'The snapshot taken',
              content: { 'application/json': { schema: snapshotItem } },
            },
            400: problem('invalid_query'),
            404: problem('no_replica: this node has no replica (role api)'),
            503: problem(
              'snapshot_unavailable: the replica is bootstrapping, has a gap, refused its log or is not running',
            ),
            ...transportProblems,
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness', responses: { 200: { description: 'alive' } } } },
      '/readyz': {
        get: {
          summary: 'Readiness',
          responses: { 200: { description: 'ready' }, 503: problem('not ready') },
        },
      },
    },
  };
  return withAuth(doc, config.apiTokens.length > 0);
}

/**
 * The bearer scheme (always described), and — on a node with LAGOON_API_TOKENS — the requirement on every
 * operation but the open ones (the probes), each with its 401 and 403 (the scope it needs: src/api/auth.ts).
 */
function withAuth(doc: Json, enabled: boolean): Json {
  doc.components = {
    securitySchemes: {
      bearerAuth: {
        type: 'http',
        scheme: 'bearer',
        description:
          'A token from LAGOON_API_TOKENS (name:token:read+write+admin,...), when the node has it set: GET routes need read; PUT, DELETE and POST /v1/batch need write; POST /v1/events needs admin; only /healthz, /readyz and the dashboard static files are open.',
      },
    },
  };
  if (!enabled) return doc;
  doc.security = [{ bearerAuth: [] }];
  const paths = doc.paths as Record<string, Record<string, Json>>;
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const need = requiredScope(method, path.replace(/\{([^}]+)\}/g, ':$1'));
      if (need === 'open') {
        op.security = [];
        continue;
      }
      op.responses = {
        ...(op.responses as Json),
        401: {
          ...problem('unauthorized: no valid Authorization: Bearer TOKEN (nothing done)'),
          headers: { 'WWW-Authenticate': { schema: { type: 'string' } } },
        },
        403: problem(
          `forbidden: the token lacks the ${need === 'unrouted' ? 'admin' : need} scope (nothing done)`,
        ),
      };
    }
  }
  return doc;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained docs page (no CDN): every operation, its parameters and responses. */
export function docsPage(doc: Json): string {
  const paths = doc.paths as Record<
    string,
    Record<
      string,
      { summary?: string; parameters?: Json[]; responses?: Record<string, { description?: string }> }
    >
  >;
  const ops = Object.entries(paths)
    .flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => {
        const params = (op.parameters ?? [])
          .map(
            (p) =>
              `<li><code>${esc(String(p.name))}</code> <small>(${esc(String(p.in))})</small> ${esc(String(p.description ?? ''))}</li>`,
          )
          .join('');
        const responses = Object.entries(op.responses ?? {})
          .map(([code, r]) => `<li><b>${code}</b> ${esc(r.description ?? '')}</li>`)
          .join('');
        return `<section><h2><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h2><p>${esc(op.summary ?? '')}</p>${params ? `<h3>Parameters</h3><ul>${params}</ul>` : ''}<h3>Responses</h3><ul>${responses}</ul></section>`;
      }),
    )
    .join('\n');
  const info = doc.info as { title: string; description: string };
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#123}
section{border:1px solid #cde;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}.m{font:bold 13px monospace;padding:2px 6px;border-radius:3px;color:#fff}
.get{background:#2a7}.put{background:#27a}.delete{background:#a33}.post{background:#a72}h2{font-size:1.05rem}h3{font-size:.9rem;margin:.4rem 0}</style></head>
<body><h1>${esc(info.title)} API</h1><p>${esc(info.description)}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>
${ops}</body></html>`;
}
