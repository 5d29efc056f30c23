import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_LIMITS } from '../../src/api/limits.js';
import { topicTag } from '../../src/core/session.js';
import { http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';
import { digestOf, type RawRequest, rawRequest, waitApplied } from '../support/raw-http.js';

/**
 * Bad input, class by class, against a running node (issue #10): each gets a 4xx problem+json with a stable
 * `code`, and none changes the replica — the node's digest (every partition's applied offset and state hash)
 * is the same before and after the whole table. Heartbeats are off, so nothing else moves the digest.
 */

let node: NodeProc;
let topic: string;
let stopAll: () => Promise<void>;
const MAX_VALUE = 64 * 1024;

beforeAll(async () => {
  const started = await startNodes(1, {
    env: { LAGOON_HEARTBEAT_MS: '0', LAGOON_MAX_VALUE_BYTES: String(MAX_VALUE) },
  });
  node = started.nodes[0]!;
  topic = started.topic;
  stopAll = started.stopAll;
});
afterAll(async () => {
  await stopAll?.();
});

const J: [string, string] = ['Content-Type', 'application/json'];
const ok = '{"ops":[{"op":"put","key":"bi/x","value":1}]}';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const token = (payload: string) => `s1.${b64(payload)}`;
const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

interface Row {
  name: string;
  req: RawRequest;
  status: number;
  /** The problem code; several when which one depends on how the bytes arrive (named in the row). */
  code: string | string[];
}

/** The bad-input table: one row per class, over kv PUT/GET/DELETE, scan, batch, writes and batches. */
function table(): Row[] {
  const tag = topicTag(topic);
  const put = (name: string, code: string, over: Partial<RawRequest>, status = 400): Row => ({
    name: `PUT ${name}`,
    status,
    code,
    req: { method: 'PUT', path: '/v1/kv/bi%2Fk', headers: [J], body: '1', ...over },
  });
  const get = (name: string, code: string, path: string, headers: Array<[string, string]> = []): Row => ({
    name: `GET ${name}`,
    status: 400,
    code,
    req: { method: 'GET', path, headers },
  });
  const batch = (
    name: string,
    code: string,
    body: string,
    over: Partial<RawRequest> = {},
    status = 400,
  ): Row => ({
    name: `batch ${name}`,
    status,
    code,
    req: { method: 'POST', path: '/v1/batch', headers: [J], body, ...over },
  });
  const op = (o: Record<string, unknown>) => JSON.stringify({ ops: [o] });
  const writes = (name: string, path: string, code = 'invalid_version', status = 400): Row => ({
    name: `writes ${name}`,
    status,
    code,
    req: { method: 'GET', path },
  });
  return [
    // --- bodies: malformed, truncated, wrong type, too large, not UTF-8, not representable
    put('malformed JSON', 'invalid_json', { body: '{"a":' }),
    put('truncated JSON', 'invalid_json', { body: '[1, 2, {"x": "abc' }),
    put('trailing garbage', 'invalid_json', { body: '{"a":1} x' }),
    put('empty body', 'invalid_json', { body: '' }),
    put('no body, no content type', 'invalid_json', { headers: [], body: undefined }),
    put(
      'text/plain',
      'unsupported_media_type',
      { headers: [['Content-Type', 'text/plain']], body: '"x"' },
      415,
    ),
    put('application/xml', 'unsupported_media_type', { headers: [['Content-Type', 'application/xml']] }, 415),
    put('unparseable content type', 'unsupported_media_type', { headers: [['Content-Type', ';;;']] }, 415),
    put(
      'charset latin1',
      'unsupported_media_type',
      {
        headers: [['Content-Type', 'application/json; charset=iso-8859-1']],
      },
      415,
    ),
    put(
      'gzip content encoding',
      'unsupported_media_type',
      { headers: [J, ['Content-Encoding', 'gzip']] },
      415,
    ),
    put('body over the limit', 'value_too_large', { body: JSON.stringify('x'.repeat(MAX_VALUE + 10)) }, 413),
    put('body not UTF-8', 'invalid_json', { body: Buffer.from([0x22, 0x61, 0xff, 0x22]) }),
    put('body with a BOM', 'invalid_json', { body: '\ufeff1' }),
    put('nesting 1001 deep', 'invalid_value', { body: deep(1001) }),
    put('nesting 30000 deep', 'invalid_value', { body: deep(30_000) }),
    put('number overflowing a double', 'invalid_value', { body: '{"n":1e400}' }),
    put('integer beyond 2^53', 'unsafe_integer', { body: '[9007199254740993]' }),
    // --- keys: empty, too long, control characters, not UTF-8, lone surrogates, broken escapes
    put('empty key', 'invalid_key', { path: '/v1/kv/' }),
    put('key of 1025 bytes', 'invalid_key', { path: `/v1/kv/${'k'.repeat(1025)}` }),
    put('key of 342 × € (1026 bytes)', 'invalid_key', { path: `/v1/kv/${'%E2%82%AC'.repeat(342)}` }),
    put('key longer than the router takes', 'invalid_key', { path: `/v1/kv/${'k'.repeat(5000)}` }),
    put('key with NUL', 'invalid_key', { path: '/v1/kv/a%00b' }),
    put('key with U+001F', 'invalid_key', { path: '/v1/kv/a%1F' }),
    put('key with DEL', 'invalid_key', { path: '/v1/kv/a%7F' }),
    put('key with C1 control U+0085', 'invalid_key', { path: '/v1/kv/a%C2%85' }),
    put('key with byte FF (not UTF-8)', 'invalid_key', { path: '/v1/kv/a%FF' }),
    put('key with overlong UTF-8', 'invalid_key', { path: '/v1/kv/%C0%AF' }),
    put('key with lone high surrogate', 'invalid_key', { path: '/v1/kv/a%ED%A0%80' }),
    put('key with lone low surrogate', 'invalid_key', { path: '/v1/kv/%ED%B0%80z' }),
    put('key with a broken escape', 'invalid_key', { path: '/v1/kv/a%ZZ' }),
    put('key ending in %', 'invalid_key', { path: '/v1/kv/a%' }),
    // --- query: unknown, repeated, contradictory, out of range, not decimal, not UTF-8
    put('unknown query parameter', 'invalid_query', { path: '/v1/kv/bi%2Fk?foo=1' }),
    put('ttl given twice', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=1&ttl=2' }),
    put('ttl=0', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=0' }),
    put('ttl=-1', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=-1' }),
    put('ttl=abc', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=abc' }),
    put('ttl=1.5', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=1.5' }),
    put('ttl empty', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=' }),
    put('ttl=0x10 (not decimal)', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=0x10' }),
    put('ttl=1e3 (not decimal)', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=1e3' }),
    put('ttl beyond 10 years', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=99999999999' }),
    put('timeoutMs=-1', 'invalid_query', { path: '/v1/kv/bi%2Fk?timeoutMs=-1' }),
    put('timeoutMs=0 (a deadline never met)', 'invalid_query', { path: '/v1/kv/bi%2Fk?timeoutMs=0' }),
    put('timeoutMs over 60000', 'invalid_query', { path: '/v1/kv/bi%2Fk?timeoutMs=60001' }),
    put('query not UTF-8', 'invalid_query', { path: '/v1/kv/bi%2Fk?ttl=%FF' }),
    {
      name: 'DELETE with ttl',
      status: 400,
      code: 'invalid_query',
      req: { method: 'DELETE', path: '/v1/kv/bi%2Fk?ttl=5' },
    },
    // --- conditions, idempotency keys, write mode, session on writes
    put('If-Match not a version', 'invalid_if_match', { headers: [J, ['If-Match', '"abc"']] }),
    put('If-Match weak', 'invalid_if_match', { headers: [J, ['If-Match', 'W/"0-1"']] }),
    put('If-Match list', 'invalid_if_match', { headers: [J, ['If-Match', '"0-1", "0-2"']] }),
    put('If-Match empty', 'invalid_if_match', { headers: [J, ['If-Match', '']] }),
    put('If-Match unbalanced quote', 'invalid_if_match', { headers: [J, ['If-Match', '"0-1']] }),
    put('If-Match offset beyond 2^53', 'invalid_if_match', {
      headers: [J, ['If-Match', '"0-99999999999999999999"']],
    }),
    put('If-Match sent twice', 'invalid_if_match', {
      headers: [J, ['If-Match', '"0-1"'], ['If-Match', '"0-2"']],
    }),
    put('If-None-Match with an ETag', 'invalid_if_none_match', { headers: [J, ['If-None-Match', '"0-1"']] }),
    put('If-None-Match empty', 'invalid_if_none_match', { headers: [J, ['If-None-Match', '']] }),
    put('If-Match and If-None-Match', 'conflicting_conditions', {
      headers: [J, ['If-Match', '*'], ['If-None-Match', '*']],
    }),
    put('Idempotency-Key empty', 'invalid_idempotency_key', { headers: [J, ['Idempotency-Key', '']] }),
    put('Idempotency-Key of 257 chars', 'invalid_idempotency_key', {
      headers: [J, ['Idempotency-Key', 'i'.repeat(257)]],
    }),
    put('Idempotency-Key with a space', 'invalid_idempotency_key', {
      headers: [J, ['Idempotency-Key', 'a b']],
    }),
    put('Idempotency-Key not ASCII', 'invalid_idempotency_key', {
      headers: [J, ['Idempotency-Key', 'caf\xe9']],
    }),
    put('Idempotency-Key sent twice', 'invalid_idempotency_key', {
      headers: [J, ['Idempotency-Key', 'a'], ['Idempotency-Key', 'b']],
    }),
    put('Lagoon-Write-Mode unknown', 'invalid_write_mode', { headers: [J, ['Lagoon-Write-Mode', 'fast']] }),
    put('Lagoon-Write-Mode empty', 'invalid_write_mode', { headers: [J, ['Lagoon-Write-Mode', '']] }),
    put('Lagoon-Session malformed', 'invalid_session', { headers: [J, ['Lagoon-Session', 'garbage']] }),
    {
      name: 'DELETE with a JSON body',
      status: 400,
      code: 'unexpected_body',
      req: { method: 'DELETE', path: '/v1/kv/bi%2Fa', headers: [J], body: '1' },
    },
    {
      name: 'DELETE with a text body',
      status: 415,
      code: 'unsupported_media_type',
      req: { method: 'DELETE', path: '/v1/kv/bi%2Fa', headers: [['Content-Type', 'text/plain']], body: 'x' },
    },
    {
      name: 'DELETE key with NUL',
      status: 400,
      code: 'invalid_key',
      req: { method: 'DELETE', path: '/v1/kv/%00' },
    },
    // --- reads: query, session tokens, Lagoon-Read-Buffered, keys
    get('consistency unknown', 'invalid_query', '/v1/kv/bi%2Fa?consistency=fast'),
    get('consistency given twice', 'invalid_query', '/v1/kv/bi%2Fa?consistency=eventual&consistency=strong'),
    get('maxStaleMs=-1', 'invalid_query', '/v1/kv/bi%2Fa?consistency=bounded&maxStaleMs=-1'),
    get('maxStaleMs without bounded', 'conflicting_query', '/v1/kv/bi%2Fa?consistency=eventual&maxStaleMs=5'),
    get('maxLag with strong', 'conflicting_query', '/v1/kv/bi%2Fa?consistency=strong&maxLag=1'),
    get('bounded without a bound', 'missing_bound', '/v1/kv/bi%2Fa?consistency=bounded'),
    get('timeoutMs=abc', 'invalid_query', '/v1/kv/bi%2Fa?timeoutMs=abc'),
    get('timeoutMs over 60000', 'invalid_query', '/v1/kv/bi%2Fa?consistency=strong&timeoutMs=600000'),
    get('unknown query parameter', 'invalid_query', '/v1/kv/bi%2Fa?x=1'),
    get('ttl on a read', 'invalid_query', '/v1/kv/bi%2Fa?ttl=5'),
    get('session token garbage', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', 'garbage'],
    ]),
    get('session token not base64url', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', 's1.!!!'],
    ]),
    get('session token not canonical base64url', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', `${token(`${tag}|0:1`)}B`],
    ]),
    get('session token of another topic', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', token('deadbeef|0:1')],
    ]),
    get('session token naming partition 99', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', token(`${tag}|99:1`)],
    ]),
    get('session token with a negative offset', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', token(`${tag}|0:-1`)],
    ]),
    get('session token naming a partition twice', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', token(`${tag}|0:1,0:2`)],
    ]),
    get('session token of 5000 chars', 'invalid_session', '/v1/kv/bi%2Fa', [
      ['Lagoon-Session', `s1.${'A'.repeat(5000)}`],
    ]),
    get('session header sent twice', 'invalid_session', '/v1/kv/bi%2Fa?consistency=session', [
      ['Lagoon-Session', token(`${tag}|0:1`)],
      ['Lagoon-Session', token(`${tag}|0:1`)],
    ]),
    get('Lagoon-Read-Buffered unknown', 'invalid_read_buffered', '/v1/kv/bi%2Fa', [
      ['Lagoon-Read-Buffered', 'yes'],
    ]),
    get('key not UTF-8', 'invalid_key', '/v1/kv/%FF'),
    get('key lone surrogate', 'invalid_key', '/v1/kv/%ED%A0%80'),
    get('empty key', 'invalid_key', '/v1/kv/'),
    // --- scans: limit, cursor, prefix
    get('scan limit=0', 'invalid_query', '/v1/kv?limit=0'),
    get('scan limit=1001', 'invalid_query', '/v1/kv?limit=1001'),
    get('scan limit=abc', 'invalid_query', '/v1/kv?limit=abc'),
    get('scan limit=1.5', 'invalid_query', '/v1/kv?limit=1.5'),
    get('scan cursor not base64url', 'invalid_cursor', '/v1/kv?cursor=!!!'),
    get('scan cursor empty', 'invalid_cursor', '/v1/kv?cursor='),
    get('scan cursor not canonical', 'invalid_cursor', `/v1/kv?cursor=${b64('bi/a')}B`),
    get('scan cursor holding a control character', 'invalid_cursor', `/v1/kv?cursor=${b64('a\u0001')}`),
    get('scan cursor from another prefix', 'invalid_cursor', `/v1/kv?prefix=zz&cursor=${b64('bi/a')}`),
    get('scan prefix of 1025 bytes', 'invalid_prefix', `/v1/kv?prefix=${'p'.repeat(1025)}`),
    get('scan prefix with NUL', 'invalid_prefix', '/v1/kv?prefix=%00'),
    get('scan prefix lone surrogate', 'invalid_query', '/v1/kv?prefix=%ED%A0%80'),
    get('scan prefix not UTF-8', 'invalid_query', '/v1/kv?prefix=%FF'),
    get('scan prefix given twice', 'invalid_query', '/v1/kv?prefix=a&prefix=b'),
    get('scan unknown parameter', 'invalid_query', '/v1/kv?foo=1'),
    get('scan maxLag without bounded', 'conflicting_query', '/v1/kv?maxLag=5'),
    get('scan session token garbage', 'invalid_session', '/v1/kv', [['Lagoon-Session', 'x']]),
    // --- batches: body, shape, ops, headers, query
    batch('malformed JSON', 'invalid_json', '{"ops":['),
    batch('empty body', 'invalid_json', ''),
    batch('text/plain', 'unsupported_media_type', ok, { headers: [['Content-Type', 'text/plain']] }, 415),
    batch(
      'body over 4 MiB',
      'value_too_large',
      `{"ops":[{"op":"put","key":"a","value":"${'x'.repeat(4_300_000)}"}]}`,
      {},
      413,
    ),
    batch('an array', 'invalid_batch', '[]'),
    batch('null', 'invalid_batch', 'null'),
    batch('no ops', 'invalid_batch', '{}'),
    batch('ops empty', 'invalid_batch', '{"ops":[]}'),
    batch('ops not an array', 'invalid_batch', '{"ops":{"0":{"op":"put","key":"a","value":1}}}'),
    batch('unknown op', 'invalid_batch', op({ op: 'upsert', key: 'bi/b', value: 1 })),
    batch('key empty', 'invalid_batch', op({ op: 'put', key: '', value: 1 })),
    batch('key a number', 'invalid_batch', op({ op: 'put', key: 1, value: 1 })),
    batch('key with NUL', 'invalid_key', op({ op: 'put', key: 'a\u0000', value: 1 })),
    batch('key with lone surrogate', 'invalid_key', '{"ops":[{"op":"put","key":"a\\ud800","value":1}]}'),
    batch('key of 1025 bytes', 'invalid_key', op({ op: 'put', key: 'k'.repeat(1025), value: 1 })),
    batch('put without value', 'invalid_batch', op({ op: 'put', key: 'bi/b' })),
    batch('delete with value', 'invalid_batch', op({ op: 'delete', key: 'bi/b', value: 1 })),
    batch('delete with ttl', 'invalid_batch', op({ op: 'delete', key: 'bi/b', ttl: 5 })),
    batch('ttl=0', 'invalid_batch', op({ op: 'put', key: 'bi/b', value: 1, ttl: 0 })),
    batch('ttl a string', 'invalid_batch', op({ op: 'put', key: 'bi/b', value: 1, ttl: '5' })),
    batch('ttl=1.5', 'invalid_batch', op({ op: 'put', key: 'bi/b', value: 1, ttl: 1.5 })),
    batch(
      'ifMatch not a version',
      'invalid_if_match',
      op({ op: 'put', key: 'bi/b', value: 1, ifMatch: 'abc' }),
    ),
    batch(
      'ifMatch and ifNoneMatch',
      'conflicting_conditions',
      op({ op: 'put', key: 'bi/b', value: 1, ifMatch: '*', ifNoneMatch: '*' }),
    ),
    batch('ifNoneMatch false', 'invalid_batch', op({ op: 'put', key: 'bi/b', value: 1, ifNoneMatch: false })),
    batch('unknown op field', 'invalid_batch', op({ op: 'put', key: 'bi/b', value: 1, x: 1 })),
    batch(
      'unknown top-level field',
      'invalid_batch',
      '{"ops":[{"op":"put","key":"bi/b","value":1}],"atomic":true}',
    ),
    batch(
      'duplicate key',
      'batch_duplicate_key',
      '{"ops":[{"op":"put","key":"bi/b","value":1},{"op":"delete","key":"bi/b"}]}',
    ),
    batch(
      'one bad op among good ones',
      'invalid_key',
      '{"ops":[{"op":"put","key":"bi/partial","value":1},{"op":"put","key":"a\\u0007","value":1}]}',
    ),
    batch(
      '1001 ops',
      'batch_too_large',
      JSON.stringify({ ops: Array.from({ length: 1001 }, (_, i) => ({ op: 'delete', key: `bi/${i}` })) }),
    ),
    batch(
      'value nested 1001 deep',
      'invalid_value',
      `{"ops":[{"op":"put","key":"bi/b","value":${deep(999)}}]}`,
    ),
    batch(
      'integer beyond 2^53 in a value',
      'unsafe_integer',
      op({ op: 'put', key: 'bi/b', value: 1 }).replace('"value":1', '"value":-9007199254740993'),
    ),
    batch(
      '__proto__ op field',
      'invalid_batch',
      '{"ops":[{"op":"put","key":"bi/b","value":1,"__proto__":{"x":1}}]}',
    ),
    batch('Lagoon-Write-Mode buffered', 'invalid_write_mode', ok, {
      headers: [J, ['Lagoon-Write-Mode', 'buffered']],
    }),
    batch('Idempotency-Key header', 'unsupported_header', ok, { headers: [J, ['Idempotency-Key', 'k1']] }),
    batch('If-Match header', 'unsupported_header', ok, { headers: [J, ['If-Match', '*']] }),
    batch('session token malformed', 'invalid_session', ok, { headers: [J, ['Lagoon-Session', 'x']] }),
    batch('timeoutMs=x', 'invalid_query', ok, { path: '/v1/batch?timeoutMs=x' }),
    batch('timeoutMs=0', 'invalid_query', ok, { path: '/v1/batch?timeoutMs=0' }),
    batch('unknown query parameter', 'invalid_query', ok, { path: '/v1/batch?foo=1' }),
    // --- write outcomes and batch verdicts
    writes('not a version', '/v1/writes/abc'),
    writes('no offset', '/v1/writes/0-'),
    writes('leading zero', '/v1/writes/01-2'),
    writes('negative partition', '/v1/writes/-1-2'),
    writes('partition beyond the topic', '/v1/writes/99-1'),
    writes('offset beyond 2^53', '/v1/writes/0-99999999999999999999'),
    writes('outbox id too short', '/v1/writes/ob-x'),
    writes('path not UTF-8', '/v1/writes/%FF'),
    writes('unknown query parameter', '/v1/writes/0-1?x=1', 'invalid_query'),
    writes('unknown outbox id', '/v1/writes/ob-AAAAAAAAAAAAAAAA', 'unknown_write', 404),
    {
      name: 'batches bad id',
      status: 400,
      code: 'invalid_batch_id',
      req: { method: 'GET', path: '/v1/batches/a%20b' },
    },
    {
      name: 'batches query',
      status: 400,
      code: 'invalid_query',
      req: { method: 'GET', path: '/v1/batches/ab?x=1' },
    },
    {
      name: 'no such route',
      status: 404,
      code: 'no_route',
      req: { method: 'POST', path: '/v1/kv/bi%2Fk', headers: [J], body: '1' },
    },
    // --- HTTP itself: refused by Node's parser before a route runs
    {
      name: 'raw byte FF in the path',
      status: 400,
      code: 'malformed_request',
      req: { method: 'PUT', path: '/v1/kv/a\xff', headers: [J], body: '1' },
    },
    {
      name: 'Content-Length not a number',
      status: 400,
      code: 'malformed_request',
      req: {
        method: 'PUT',
        path: '/v1/kv/bi%2Fk',
        headers: [J, ['Content-Length', 'abc']],
        body: '1',
        noContentLength: true,
      },
    },
    {
      name: 'Content-Length and Transfer-Encoding both',
      status: 400,
      code: 'malformed_request',
      req: {
        method: 'PUT',
        path: '/v1/kv/bi%2Fk',
        headers: [J, ['Content-Length', '1'], ['Transfer-Encoding', 'chunked']],
        body: '1\r\n1\r\n0\r\n\r\n',
        noContentLength: true,
      },
    },
    {
      name: 'chunk size not hex',
      status: 400,
      code: 'malformed_request',
      req: {
        method: 'PUT',
        path: '/v1/kv/bi%2Fk',
        headers: [J, ['Transfer-Encoding', 'chunked']],
        body: 'zz\r\n1\r\n0\r\n\r\n',
        noContentLength: true,
      },
    },
    {
      name: 'control character in a header value',
      status: 400,
      code: 'malformed_request',
      req: { method: 'GET', path: '/v1/kv/bi%2Fa', headers: [['X-Bad', 'a\u0001b']] },
    },
    // --- header floods
    {
      name: '200 small headers',
      status: 431,
      code: 'too_many_headers',
      req: {
        method: 'GET',
        path: '/v1/kv/bi%2Fa',
        headers: Array.from({ length: 200 }, (_, i) => [`X-F${i}`, 'v'] as [string, string]),
      },
    },
    {
      name: '2000 headers',
      status: 431,
      // Whether the count or the size trips first depends on Node's accounting of the header block.
      code: ['too_many_headers', 'headers_too_large'],
      req: {
        method: 'GET',
        path: '/v1/kv/bi%2Fa',
        headers: Array.from({ length: 2000 }, (_, i) => [`X-Flood-${i}`, 'value'] as [string, string]),
      },
    },
    {
      name: 'one 64 KiB header',
      status: 431,
      code: 'headers_too_large',
      req: { method: 'GET', path: '/v1/kv/bi%2Fa', headers: [['X-Big', 'a'.repeat(64 * 1024)]] },
    },
  ];
}

describe('bad input: a 4xx problem+json with a stable code, and nothing changed', () => {
  let before = '';

  it('takes valid writes first (also __proto__ and constructor members, kept as data)', async () => {
    let session = '';
    const proto =
      '{"__proto__":{"admin":true},"constructor":{"prototype":{"polluted":1}},"ok":[1,{"__proto__":null}]}';
    for (const [key, text] of [
      ['bi/a', '{"v":1}'],
      ['bi/b', '[1,2,3]'],
      ['bi/proto', proto],
    ] as const) {
      const r = await rawRequest(node.port, {
        method: 'PUT',
        path: `/v1/kv/${encodeURIComponent(key)}`,
        headers: [J],
        body: text,
      });
      expect(r.status, r.text).toBe(200);
      session = r.headers.get('lagoon-session')!;
    }
    const b = await http('POST', `${node.url}/v1/batch`, {
      body: {
        ops: [
          { op: 'put', key: 'bi/c', value: JSON.parse('{"__proto__":"data","constructor":1}') },
          { op: 'put', key: 'bi/d', value: null },
        ],
      },
      headers: { 'Lagoon-Session': session },
    });
    expect(b.status, JSON.stringify(b.body)).toBe(200);
    await waitApplied(node, b.headers.get('lagoon-session'));
    const got = await rawRequest(node.port, { method: 'GET', path: '/v1/kv/bi%2Fproto' });
    expect(got.status).toBe(200);
    expect(got.text).toContain(`"value":${proto},`);
    expect(Object.getOwnPropertyDescriptor(got.json.value, '__proto__')?.value).toEqual({ admin: true });
    expect(Object.getPrototypeOf(got.json.value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    const c = await http('GET', kvUrl(node, 'bi/c'));
    expect(c.body.value).toEqual(JSON.parse('{"__proto__":"data","constructor":1}'));
    // The node is not polluted either: an unrelated object read afterwards has no stray members.
    const st = await http('GET', `${node.url}/v1/status`);
    expect(st.body.admin).toBeUndefined();
    // The batch's commit markers follow its records in the log: the replica moves its applied offsets past them
    // after the records themselves (waitApplied). A strong scan waits until every partition's applied offset
    // reached the log's end, markers included, so the digest taken now is the one nothing but a write can move.
    const settled = await http('GET', `${node.url}/v1/kv?consistency=strong&limit=1`, { timeoutMs: 60_000 });
    expect(settled.status, JSON.stringify(settled.body)).toBe(200);
    before = await digestOf(node);
  });

  it('answers every row of the table as it says, and the digest does not move', async () => {
    expect(before).not.toBe('');
    const rows = table();
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const seen: string[] = [];
    const wrong: string[] = [];
    for (const row of rows) {
      const r = await rawRequest(node.port, row.req);
      const codes = Array.isArray(row.code) ? row.code : [row.code];
      const ct = r.headers.get('content-type') ?? '';
      seen.push(`${row.name.padEnd(48)} ${r.status} ${r.json?.code ?? r.text.slice(0, 60)}`);
      if (
        r.status !== row.status ||
        !codes.includes(r.json?.code) ||
        !ct.startsWith('application/problem+json')
      ) {
        wrong.push(
          `${row.name}: expected ${row.status} ${codes.join('|')}, got ${r.status} ${ct} ${r.text.slice(0, 300)}`,
        );
        continue;
      }
      // RFC 9457 shape, no internals.
      expect(r.json).toMatchObject({
        status: row.status,
        type: expect.stringContaining(r.json.code),
        definite: true,
      });
      expect(typeof r.json.detail).toBe('string');
      expect(r.text).not.toMatch(/\bat .+\.(ts|js):\d+/);
    }
    console.log(`bad-input table (${rows.length} rows):\n${seen.join('\n')}`);
    expect(wrong).toEqual([]);
    // Still serving, and nothing changed: not one record reached the log, not one row of the store moved.
    const a = await http('GET', kvUrl(node, 'bi/a'));
    expect(a.status).toBe(200);
    expect(a.body.value).toEqual({ v: 1 });
    expect((await http('GET', kvUrl(node, 'bi/partial'))).status).toBe(404);
    expect((await http('GET', kvUrl(node, 'bi/k'))).status).toBe(404);
    expect(await digestOf(node)).toBe(before);
  });

  it('cuts off slow senders at their deadline, but not a read that waits for its replica', async () => {
    /** Opens a socket, sends `first`, then `drip` every second; resolves when the server closes it. */
    const slow = (first: string, drip?: string) =>
      new Promise<{ ms: number; answer: string }>((resolve) => {
        const started = Date.now();
        const s = net.connect(node.port, '127.0.0.1');
        let answer = '';
        s.on('data', (c) => {
          answer += c.toString('latin1');
        });
        s.on('error', () => {});
        if (first) s.write(first);
        const iv = drip === undefined ? undefined : setInterval(() => s.writable && s.write(drip), 1000);
        s.on('close', () => {
          clearInterval(iv);
          resolve({ ms: Date.now() - started, answer });
        });
        // A generous bound: the test fails (not hangs) if the server never closes.
        setTimeout(() => s.destroy(), 120_000);
      });
    const tag = topicTag(topic);
    const farAhead = token(`${tag}|${Array.from({ length: 6 }, (_, p) => `${p}:1000000000`).join(',')}`);
    const [idle, headers, body, longRead] = await Promise.all([
      slow(''),
      slow('GET /v1/kv/bi%2Fa HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'),
      slow(
        'PUT /v1/kv/bi%2Fslow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[',
        '1,',
      ),
      (async () => {
        const started = Date.now();
        const r = await rawRequest(node.port, {
          method: 'GET',
          path: '/v1/kv/bi%2Fa?consistency=session&timeoutMs=35000',
          headers: [['Lagoon-Session', farAhead]],
          timeoutMs: 90_000,
        });
        return { ms: Date.now() - started, r };
      })(),
    ]);
    const limit = (ms: number) => ms + HTTP_LIMITS.checkIntervalMs + 10_000; // check interval + a slow machine
    for (const [what, got, deadline] of [
      ['idle connection', idle, HTTP_LIMITS.headersTimeoutMs],
      ['slow headers', headers, HTTP_LIMITS.headersTimeoutMs],
      ['slow body', body, HTTP_LIMITS.requestTimeoutMs],
    ] as const) {
      console.log(`${what}: closed after ${got.ms} ms: ${got.answer.split('\r\n')[0]}`);
      expect(got.ms, what).toBeGreaterThanOrEqual(deadline - 1000);
      expect(got.ms, what).toBeLessThan(limit(deadline));
      expect(got.answer, what).toMatch(/^HTTP\/1\.1 408 /);
      expect(got.answer, what).toContain('application/problem+json');
      expect(got.answer, what).toContain('"code":"request_timeout"');
    }
    // A session read that waits 35 s (longer than the 30 s request deadline) gets its own answer, not a 408.
    expect(longRead.r.status).toBe(504);
    expect(longRead.r.json.code).toBe('session_timeout');
    expect(longRead.ms).toBeGreaterThanOrEqual(35_000);
    // Nothing was written by the slow body, and the node still answers.
    expect((await http('GET', kvUrl(node, 'bi/slow'))).status).toBe(404);
    expect((await http('GET', kvUrl(node, 'bi/a'))).status).toBe(200);
    expect(await digestOf(node)).toBe(before);
  });
});
