import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { openApiDocument } from '../../../src/api/openapi.js';
import * as S from '../../../src/api/schemas.js';
import type { RouteContract } from '../../../src/client/contract.js';
import type {
  BatchOp,
  BatchOpResult,
  BatchOutcomeBody,
  BatchResult,
  BatchResultBody,
  BufferedWriteBody,
  GetResult,
  Item,
  LagReport,
  NodeStatus,
  PendingWriteBody,
  ProblemFields,
  ReadOptions,
  ResponseMeta,
  ScanOptions,
  ScanPage,
  ScanResultBody,
  StatusResult,
  WriteOptions,
  WriteOutcomeBody,
  WriteResult,
  WriteResultBody,
} from '../../../src/client/index.js';
import { type LagoonClient, ROUTES, SHAPES } from '../../../src/client/index.js';
import { parseNodeConfig } from '../../../src/config.js';

/**
 * The client's types against /openapi.json. Both come from src/api/schemas.ts, but by different roads: the
 * client's types by `z.infer` (checked below at compile time, so `tsc` fails when they drift), the document by
 * `z.toJSONSchema` plus hand-written parameter, header and response lists in src/api/openapi.ts. The client's
 * contract (src/client/contract.ts: query keys, headers, body fields) is compared with the document here, so a
 * parameter, header, field or status added, renamed or made optional on one side only fails this test.
 */

type Json = Record<string, unknown>;
type Route = (typeof ROUTES)[keyof typeof ROUTES];

const doc = openApiDocument(
  parseNodeConfig({ id: 'n1', port: 8081, db: '/tmp/x.db', kafka: { brokers: '127.0.0.1:9092' } }),
) as Json;

const jsonSchemaOf = (name: string): Json => {
  const schema = (S as unknown as Record<string, z.ZodType>)[name];
  if (schema === undefined) throw new Error(`src/api/schemas.ts has no schema ${name}`);
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
};
const sorted = (xs: Iterable<string>) => [...xs].sort();
const lower = (xs: Iterable<string>) => sorted([...xs].map((x) => x.toLowerCase()));

/** A documented object schema's fields, as the client's shapes write them. */
function shapeOfJson(schema: Json): Record<string, 'required' | 'optional'> {
  const props = (schema.properties ?? {}) as Json;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.fromEntries(Object.keys(props).map((k) => [k, required.has(k) ? 'required' : 'optional']));
}

const sameShape = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/** Every difference between the client's contract and an OpenAPI document; empty when they agree. */
function contractDrift(document: Json): string[] {
  const drift: string[] = [];
  const paths = document.paths as Record<string, Record<string, Json>>;
  for (const [name, route] of Object.entries(ROUTES) as Array<[string, Route]>) {
    const op = paths[route.path]?.[route.method.toLowerCase()];
    if ('documented' in route && route.documented === false) {
      if (op !== undefined) drift.push(`${name}: ${route.path} is documented now; type it from the document`);
      continue;
    }
    if (op === undefined) {
      drift.push(`${name}: ${route.method} ${route.path} is not in the document`);
      continue;
    }
    const params = (op.parameters ?? []) as Array<{ name: string; in: string }>;
    const query = params.filter((p) => p.in === 'query').map((p) => p.name);
    if (sorted(query).join() !== sorted(route.query).join()) {
      drift.push(`${name}: query ${sorted(query)} documented, the client sends ${sorted(route.query)}`);
    }
    const unused = 'unused' in route ? route.unused : { headers: [], bodies: [] };
    const headers = params.filter((p) => p.in === 'header').map((p) => p.name);
    const known = [...route.headers, ...unused.headers];
    if (lower(headers).join() !== lower(known).join()) {
      drift.push(`${name}: request headers ${sorted(headers)} documented, the client knows ${sorted(known)}`);
    }
    const responses = (op.responses ?? {}) as Record<string, Json>;
    const successes = Object.keys(responses).filter((s) => s.startsWith('2'));
    const handled = Object.keys(route.responses);
    if (sorted(successes).join() !== sorted(handled).join()) {
      drift.push(`${name}: success statuses ${successes} documented, the client handles ${handled}`);
    }
    for (const [status, names] of Object.entries(route.responses) as Array<[string, readonly string[]]>) {
      const content = (responses[status]?.content as Json | undefined)?.['application/json'] as
        | Json
        | undefined;
      const schema = content?.schema as Json | undefined;
      if (schema === undefined) {
        if (names.length > 0) drift.push(`${name} ${status}: no JSON body documented`);
        continue;
      }
      const documented = (schema.oneOf as Json[] | undefined) ?? [schema];
      const expected = [...names, ...(status.startsWith('2') ? unused.bodies : [])];
      // Each documented body must be exactly the JSON Schema of one body the client expects (or ignores).
      for (const d of documented) {
        if (!expected.some((n) => JSON.stringify(jsonSchemaOf(n)) === JSON.stringify(d))) {
          drift.push(`${name} ${status}: a documented body is none of ${expected}`);
        }
      }
      for (const n of expected) {
        if (!documented.some((d) => JSON.stringify(jsonSchemaOf(n)) === JSON.stringify(d))) {
          drift.push(`${name} ${status}: the client expects ${n}, the document does not describe it here`);
        }
      }
      // And the client's field list for it must say what the document says.
      for (const n of names) {
        const d =
          documented.find((x) => JSON.stringify(jsonSchemaOf(n)) === JSON.stringify(x)) ?? documented[0]!;
        const mine = SHAPES[n as keyof typeof SHAPES] as Record<string, string>;
        if (!sameShape(shapeOfJson(d), mine)) {
          drift.push(
            `${name} ${status} ${n}: fields ${JSON.stringify(shapeOfJson(d))} documented, the client has ${JSON.stringify(mine)}`,
          );
        }
      }
    }
    for (const [status, r] of Object.entries(responses)) {
      if (Number(status) < 400) continue;
      const problem = ((r.content as Json | undefined)?.['application/problem+json'] as Json | undefined)
        ?.schema as Json | undefined;
      if (problem === undefined) drift.push(`${name} ${status}: not a problem+json answer`);
      else if (!sameShape(shapeOfJson(problem), SHAPES.ProblemSchema)) {
        drift.push(`${name} ${status}: problem fields ${JSON.stringify(shapeOfJson(problem))} documented`);
      }
    }
    const okHeaders = Object.keys((responses['200']?.headers ?? {}) as Json);
    for (const h of route.responseHeaders) {
      if (!lower(okHeaders).includes(h.toLowerCase())) drift.push(`${name}: reads ${h}, not documented`);
    }
    // Headers the client reads that /openapi.json does not list yet (none today; kept so a new one is caught).
    const undocumented: readonly string[] = (route as RouteContract).undocumentedResponseHeaders ?? [];
    for (const h of undocumented) {
      if (lower(okHeaders).includes(h.toLowerCase())) {
        drift.push(`${name}: ${h} is documented now: move it to responseHeaders`);
      }
    }
  }
  // Bodies nested in others, and the batch request body.
  const batchResult = jsonSchemaOf('BatchResult') as { properties: { ops: { items: Json } } };
  if (!sameShape(shapeOfJson(batchResult.properties.ops.items), SHAPES.BatchOpResult)) {
    drift.push('BatchOpResult fields differ from BatchResult.ops items');
  }
  const batchPost = paths['/v1/batch']?.post as Json | undefined;
  const batchBody = ((batchPost?.requestBody as Json | undefined)?.content as Json | undefined)?.[
    'application/json'
  ] as { schema?: { properties?: { ops?: { items?: Json } } } } | undefined;
  const opSchema = batchBody?.schema?.properties?.ops?.items;
  if (opSchema === undefined || !sameShape(shapeOfJson(opSchema), SHAPES.BatchOp)) {
    drift.push('batch: the documented op fields differ from the client BatchOp');
  }
  return drift;
}

const clone = (): Json => structuredClone(doc);
const get = (d: Json, path: string, method: string) =>
  (d.paths as Record<string, Record<string, Json>>)[path]![method]!;
const okSchema = (op: Json, status = '200') =>
  ((op.responses as Record<string, Json>)[status]!.content as Record<string, Json>)['application/json']!
    .schema as Json;

describe('client contract vs /openapi.json', () => {
  it('agrees with the document the server builds', () => {
    expect(contractDrift(doc)).toEqual([]);
  });

  it('notices a field added to a response on one side only', () => {
    const d = clone();
    const item = (okSchema(get(d, '/v1/kv/{key}', 'get')).oneOf as Json[])[0]!;
    (item.properties as Json).ttl = { type: 'integer' };
    expect(contractDrift(d).join('\n')).toMatch(/get 200/);
  });

  it('notices a renamed field and a field that became optional', () => {
    const d = clone();
    const write = okSchema(get(d, '/v1/kv/{key}', 'put'));
    const props = write.properties as Json;
    props.ver = props.version;
    delete props.version;
    write.required = (write.required as string[]).map((f) => (f === 'version' ? 'ver' : f));
    expect(contractDrift(d).join('\n')).toMatch(/put 200/);
    const d2 = clone();
    const status = okSchema(get(d2, '/v1/status', 'get'));
    status.required = (status.required as string[]).filter((f) => f !== 'node');
    expect(contractDrift(d2).join('\n')).toMatch(/status 200/);
  });

  it('notices a query parameter or header added, removed or renamed', () => {
    const d = clone();
    const params = get(d, '/v1/kv', 'get').parameters as Json[];
    params.push({ name: 'reverse', in: 'query', required: false, schema: { type: 'boolean' } });
    expect(contractDrift(d).join('\n')).toMatch(/scan: query/);
    const d2 = clone();
    const put = get(d2, '/v1/kv/{key}', 'put');
    put.parameters = (put.parameters as Json[]).map((p) =>
      p.name === 'Idempotency-Key' ? { ...p, name: 'Idempotency-Token' } : p,
    );
    expect(contractDrift(d2).join('\n')).toMatch(/put: request headers/);
  });

  it('notices a new success status and a body the client does not expect', () => {
    const d = clone();
    (get(d, '/v1/batch', 'post').responses as Json)['207'] = { description: 'partly' };
    expect(contractDrift(d).join('\n')).toMatch(/batch: success statuses/);
    const d2 = clone();
    (okSchema(get(d2, '/v1/kv/{key}', 'delete'), '202').oneOf as Json[]).push({ type: 'object' });
    expect(contractDrift(d2).join('\n')).toMatch(/delete 202/);
  });

  it('notices a change in the problem body and in the response headers the client reads', () => {
    const d = clone();
    const problem = (
      (get(d, '/v1/kv/{key}', 'get').responses as Record<string, Json>)['503']!.content as Json
    )['application/problem+json'] as Json;
    problem.schema = { ...(problem.schema as Json), required: ['code'] };
    expect(contractDrift(d).join('\n')).toMatch(/get 503: problem fields/);
    const d2 = clone();
    const ok = (get(d2, '/v1/kv/{key}', 'get').responses as Record<string, Json>)['200']!;
    delete (ok.headers as Json)['Lagoon-Served-By'];
    expect(contractDrift(d2).join('\n')).toMatch(/reads Lagoon-Served-By/);
  });
});

describe('client types are the schemas’ types (checked by tsc)', () => {
  it('bodies', () => {
    expectTypeOf<Item>().toEqualTypeOf<Omit<z.infer<typeof S.Item>, 'value'> & { value: unknown }>();
    expectTypeOf<Item>().toMatchTypeOf<z.infer<typeof S.Item>>();
    expectTypeOf<z.infer<typeof S.Item>>().toMatchTypeOf<Item>();
    expectTypeOf<WriteResultBody>().toEqualTypeOf<z.infer<typeof S.WriteResult>>();
    expectTypeOf<PendingWriteBody>().toEqualTypeOf<z.infer<typeof S.PendingWrite>>();
    expectTypeOf<BufferedWriteBody>().toEqualTypeOf<z.infer<typeof S.BufferedWrite>>();
    expectTypeOf<ScanResultBody>().toEqualTypeOf<z.infer<typeof S.ScanResult>>();
    expectTypeOf<WriteOutcomeBody>().toEqualTypeOf<z.infer<typeof S.WriteOutcomeView>>();
    expectTypeOf<BatchResultBody>().toEqualTypeOf<z.infer<typeof S.BatchResult>>();
    expectTypeOf<BatchOpResult>().toEqualTypeOf<z.infer<typeof S.BatchOpResult>>();
    expectTypeOf<BatchOutcomeBody>().toEqualTypeOf<z.infer<typeof S.BatchOutcomeView>>();
    expectTypeOf<NodeStatus>().toEqualTypeOf<z.infer<typeof S.NodeStatus>>();
    expectTypeOf<ProblemFields>().toEqualTypeOf<z.infer<typeof S.ProblemSchema>>();
    expectTypeOf<BatchOp>().toEqualTypeOf<z.infer<typeof S.BatchOp>>();
  });

  it('what the client’s methods take and give', () => {
    type Opts<K extends keyof LagoonClient> = LagoonClient[K] extends (...a: infer A) => unknown ? A : never;
    // Every query field of the route is an option, and every option but the call's own is a query field.
    expectTypeOf<Omit<ReadOptions, 'signal' | 'node'>>().toEqualTypeOf<
      Partial<z.infer<typeof S.ReadQuery>>
    >();
    expectTypeOf<Omit<ScanOptions, 'signal' | 'node'>>().toEqualTypeOf<
      Partial<z.infer<typeof S.ScanQuery>>
    >();
    expectTypeOf<Pick<WriteOptions, 'ttl' | 'timeoutMs'>>().toEqualTypeOf<
      Partial<z.infer<typeof S.WriteQuery>>
    >();
    expectTypeOf<Opts<'get'>[1]>().toEqualTypeOf<ReadOptions | undefined>();
    expectTypeOf<Opts<'batch'>[0]>().toEqualTypeOf<readonly z.infer<typeof S.BatchOp>[]>();
    // Results carry the schema's fields (plus where they came from).
    expectTypeOf<Extract<GetResult, { found: true }>>().toMatchTypeOf<z.infer<typeof S.Item>>();
    expectTypeOf<ScanPage['items'][number]>().toMatchTypeOf<z.infer<typeof S.Item>>();
    expectTypeOf<WriteResult>().toMatchTypeOf<z.infer<typeof S.WriteResult>>();
    expectTypeOf<BatchResult['ops']>().toEqualTypeOf<z.infer<typeof S.BatchResult>['ops'] | undefined>();
    expectTypeOf<StatusResult>().toMatchTypeOf<z.infer<typeof S.NodeStatus>>();
    expectTypeOf<Awaited<ReturnType<LagoonClient['get']>>>().toEqualTypeOf<GetResult<unknown>>();
    // What the client adds to a body never shadows one of the body's own fields (a status body's node id).
    type Meta =
      | keyof ResponseMeta
      | 'consistency'
      | 'found'
      | 'idempotencyKey'
      | 'replayed'
      | 'updateAttempts';
    expectTypeOf<Meta & keyof Item>().toBeNever();
    expectTypeOf<Meta & keyof WriteResultBody>().toBeNever();
    expectTypeOf<Meta & keyof BufferedWriteBody>().toBeNever();
    expectTypeOf<Meta & keyof ScanResultBody>().toBeNever();
    expectTypeOf<Meta & keyof BatchResultBody>().toBeNever();
    expectTypeOf<Meta & keyof NodeStatus>().toBeNever();
    expectTypeOf<Meta & keyof LagReport>().toBeNever();
    expectTypeOf<Awaited<ReturnType<LagoonClient['status']>>>().toEqualTypeOf<StatusResult>();
  });
});
