import type {
  BatchOp,
  BatchOpResult,
  BatchOutcomeBody,
  BatchQueryFields,
  BatchResultBody,
  BufferedWriteBody,
  Item,
  NodeStatus,
  PendingWriteBody,
  ProblemFields,
  ReadQueryFields,
  ScanQueryFields,
  ScanResultBody,
  WriteOutcomeBody,
  WriteQueryFields,
  WriteResultBody,
} from './types.js';

/**
 * What the client sends and expects, route by route, as data: the query keys it puts in URLs, the headers it
 * sends and reads, and the fields of every body it parses. The client builds its requests from these lists and
 * checks answers against them, and test/unit/client/contract.test.ts compares them with /openapi.json — so a
 * field or parameter added, renamed or made optional on one side only fails a test. Each list is checked against
 * the schema-derived TypeScript type at compile time (a missing or extra name does not compile).
 */

/** `keysOf<T>()([...])`: the list must name every key of T, and nothing else. */
export function keysOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    keys: K &
      (Exclude<keyof T, K[number]> extends never ? unknown : { missing: Exclude<keyof T, K[number]> }),
  ): K => keys;
}

/** Per field: whether a valid body must carry it. */
export type Shape<T> = { readonly [K in keyof T]-?: object extends Pick<T, K> ? 'optional' : 'required' };
/** `shapeOf<T>()({...})`: exactly T's fields, each marked as T has it (required or optional). */
export const shapeOf =
  <T>() =>
  (s: Shape<T>): Shape<T> =>
    s;

export const READ_QUERY = keysOf<ReadQueryFields>()(['consistency', 'maxStaleMs', 'maxLag', 'timeoutMs']);
export const SCAN_QUERY = keysOf<ScanQueryFields>()([
  'consistency',
  'maxStaleMs',
  'maxLag',
  'timeoutMs',
  'prefix',
  'limit',
  'cursor',
]);
export const WRITE_QUERY = keysOf<WriteQueryFields>()(['ttl', 'timeoutMs']);
export const BATCH_QUERY = keysOf<BatchQueryFields>()(['timeoutMs']);

/** Every JSON body the client parses, by the name of its zod schema in src/api/schemas.ts. */
export const SHAPES = {
  Item: shapeOf<Item>()({
    key: 'required',
    value: 'required',
    version: 'required',
    updatedAt: 'required',
    expiresAt: 'optional',
  }),
  ScanResult: shapeOf<ScanResultBody>()({ items: 'required', nextCursor: 'required' }),
  WriteResult: shapeOf<WriteResultBody>()({
    key: 'required',
    version: 'required',
    partition: 'required',
    offset: 'required',
    status: 'required',
    deleted: 'optional',
  }),
  PendingWrite: shapeOf<PendingWriteBody>()({
    key: 'required',
    version: 'required',
    partition: 'required',
    offset: 'required',
    status: 'required',
    href: 'required',
  }),
  BufferedWrite: shapeOf<BufferedWriteBody>()({
    status: 'required',
    id: 'required',
    key: 'required',
    partition: 'required',
    bufferedAt: 'required',
    href: 'required',
  }),
  WriteOutcomeView: shapeOf<WriteOutcomeBody>()({
    version: 'required',
    id: 'optional',
    status: 'required',
    key: 'optional',
    reason: 'optional',
    bufferedAt: 'optional',
    sentAt: 'optional',
  }),
  BatchResult: shapeOf<BatchResultBody>()({
    batch: 'required',
    status: 'required',
    href: 'optional',
    ops: 'required',
  }),
  BatchOpResult: shapeOf<BatchOpResult>()({
    key: 'required',
    version: 'required',
    partition: 'required',
    offset: 'required',
  }),
  BatchOutcomeView: shapeOf<BatchOutcomeBody>()({
    batch: 'required',
    status: 'required',
    reason: 'required',
    op: 'required',
  }),
  NodeStatus: shapeOf<NodeStatus>()({
    node: 'required',
    role: 'required',
    topic: 'required',
    replica: 'required',
    topicProblem: 'optional',
    partitions: 'required',
    brokers: 'required',
    writeMode: 'required',
    outboxDepth: 'required',
    outbox: 'required',
    bookkeepingRetentionMs: 'required',
  }),
  ProblemSchema: shapeOf<ProblemFields>()({
    type: 'required',
    title: 'required',
    status: 'required',
    detail: 'required',
    code: 'required',
    retryable: 'required',
    definite: 'required',
    instance: 'optional',
  }),
  /** The request body of a batch op (the client sends callers' ops as they are; listed for the contract test). */
  BatchOp: shapeOf<BatchOp>()({
    op: 'required',
    key: 'required',
    value: 'optional',
    ifMatch: 'optional',
    ifNoneMatch: 'optional',
    ttl: 'optional',
  }),
} as const;

export type BodyName = keyof typeof SHAPES;

/** Response headers the client reads on reads (and surfaces as ResponseMeta). */
export const READ_RESPONSE_HEADERS = [
  'ETag',
  'Lagoon-Served-By',
  'Lagoon-Lag-Records',
  'Lagoon-Staleness-Ms',
  'Lagoon-Consistency',
  'Lagoon-Session',
] as const;

/** One route the client calls. */
export interface RouteContract {
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  /** OpenAPI path template. */
  path: string;
  /** Query keys the client may send (all the route has). */
  query: readonly string[];
  /** Headers the client may send. */
  headers: readonly string[];
  /** Documented request headers the client deliberately never sends, and the bodies only they cause. */
  unused?: { headers: readonly string[]; bodies: readonly string[] };
  /** Success statuses the client handles, with the bodies each may carry (every error is a problem body). */
  responses: Readonly<Record<number, readonly BodyName[]>>;
  /** Response headers the client reads on success. */
  responseHeaders: readonly string[];
  /** Headers the client reads that /openapi.json does not list yet. */
  undocumentedResponseHeaders?: readonly string[];
  /** False for a route /openapi.json does not describe (typed from a server interface instead). */
  documented?: false;
}

const WRITE_HEADERS = ['If-Match', 'If-None-Match', 'Idempotency-Key', 'Lagoon-Session', 'Lagoon-Write-Mode'];

export const ROUTES = {
  get: {
    method: 'GET',
    path: '/v1/kv/{key}',
    query: READ_QUERY,
    headers: ['Lagoon-Session'],
    unused: { headers: ['Lagoon-Read-Buffered'], bodies: ['BufferedItem'] },
    responses: { 200: ['Item'] },
    responseHeaders: READ_RESPONSE_HEADERS,
  },
  scan: {
    method: 'GET',
    path: '/v1/kv',
    query: SCAN_QUERY,
    headers: ['Lagoon-Session'],
    responses: { 200: ['ScanResult'] },
    responseHeaders: READ_RESPONSE_HEADERS.filter((h) => h !== 'ETag'),
  },
  put: {
    method: 'PUT',
    path: '/v1/kv/{key}',
    query: WRITE_QUERY,
    headers: WRITE_HEADERS,
    responses: { 200: ['WriteResult'], 202: ['PendingWrite', 'BufferedWrite'] },
    responseHeaders: ['ETag', 'Lagoon-Session', 'Idempotent-Replayed'],
  },
  delete: {
    method: 'DELETE',
    path: '/v1/kv/{key}',
    query: WRITE_QUERY.filter((k) => k !== 'ttl'),
    headers: WRITE_HEADERS,
    responses: { 200: ['WriteResult'], 202: ['PendingWrite', 'BufferedWrite'] },
    responseHeaders: ['ETag', 'Lagoon-Session', 'Idempotent-Replayed'],
  },
  writeOutcome: {
    method: 'GET',
    path: '/v1/writes/{version}',
    query: [],
    headers: [],
    responses: { 200: ['WriteOutcomeView'] },
    responseHeaders: [],
  },
  batch: {
    method: 'POST',
    path: '/v1/batch',
    query: BATCH_QUERY,
    headers: ['Lagoon-Session'],
    responses: { 200: ['BatchResult'], 202: ['BatchResult'] },
    responseHeaders: ['Lagoon-Session'],
  },
  batchOutcome: {
    method: 'GET',
    path: '/v1/batches/{id}',
    query: [],
    headers: [],
    responses: { 200: ['BatchOutcomeView'] },
    responseHeaders: [],
  },
  status: {
    method: 'GET',
    path: '/v1/status',
    query: [],
    headers: [],
    responses: { 200: ['NodeStatus'] },
    responseHeaders: [],
  },
  lag: {
    method: 'GET',
    path: '/v1/lag',
    query: [],
    headers: [],
    responses: { 200: [] },
    responseHeaders: [],
    documented: false,
  },
} as const satisfies Record<string, RouteContract>;

/** Names of the required fields a body must carry (the client refuses an answer without them). */
export function missingFields(name: BodyName, body: unknown): string[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return ['(not an object)'];
  const shape = SHAPES[name] as Record<string, 'required' | 'optional'>;
  return Object.entries(shape)
    .filter(([field, need]) => need === 'required' && !(field in body))
    .map(([field]) => field);
}
