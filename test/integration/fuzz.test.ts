import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSession, topicTag } from '../../src/core/session.js';
import { type NodeProc, startNodes } from '../support/nodes.js';
import { digestOf, percentEncode, type RawResponse, rawRequest, waitApplied } from '../support/raw-http.js';

/**
 * Property-based fuzzing of one running node (issue #10): arbitrary keys, JSON values, header values and batch
 * bodies. For every request: never a 5xx; a 2xx only for input the test's own oracle calls valid (and valid input
 * is taken); a refusal (400) leaves the node's digest exactly as it was; a stored value reads back byte-equal to
 * the canonical JSON of what was sent. Heartbeats are off, and after every accepted write the test waits until
 * the replica applied it, so the digest moves only when a request changed something.
 *
 * Runs are few (a 2-core machine, ~1 minute). The seed is fixed for a stable CI; LAGOON_FUZZ_SEED=n explores
 * another part of the space, LAGOON_FUZZ_RUNS=n scales the runs.
 */

const SEED = Number(process.env.LAGOON_FUZZ_SEED ?? 20_260_10);
const SCALE = Number(process.env.LAGOON_FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

let node: NodeProc;
let tag: string;
let stopAll: () => Promise<void>;
/** The node's digest as of the last accepted write (the replica has applied it). */
let digest = '';
let counter = 0;

beforeAll(async () => {
  const started = await startNodes(1, { env: { LAGOON_HEARTBEAT_MS: '0' } });
  node = started.nodes[0]!;
  tag = topicTag(started.topic);
  stopAll = started.stopAll;
  digest = await digestOf(node);
});
afterAll(async () => {
  await stopAll?.();
});

// ---------------------------------------------------------------- the test's own oracle (not the server's code)

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** A store key: 1–1024 bytes of UTF-8, no C0/C1 control characters, no lone surrogates. */
function keyOk(k: unknown): boolean {
  return (
    typeof k === 'string' &&
    k.length > 0 &&
    !/\p{Surrogate}/u.test(k) &&
    ![...k].some((c) => c.charCodeAt(0) <= 0x1f || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f)) &&
    Buffer.byteLength(k, 'utf8') <= 1024
  );
}

/** A value JSON can carry exactly: nesting ≤ 1000, no integer literal beyond ±(2^53−1). */
function valueOk(v: unknown, depth = 0): boolean {
  if (typeof v === 'number') {
    return Number.isFinite(v) && !(Number.isInteger(v) && Math.abs(v) > MAX_SAFE && !/[.eE]/.test(String(v)));
  }
  if (v === null || typeof v !== 'object') return true;
  if (depth + 1 > 1000) return false;
  return Object.values(v).every((x) => valueOk(x, depth + 1));
}

const VERSION = /^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)$/;
function versionOk(s: string): boolean {
  const m = VERSION.exec(s);
  return m !== null && BigInt(m[1]!) <= 2n ** 31n - 1n && BigInt(m[2]!) <= BigInt(MAX_SAFE);
}
/** If-Match: `*`, or one version, quoted or not (never weak, never a list). */
function ifMatchOk(raw: string): boolean {
  const h = raw.replace(/^[ \t]+|[ \t]+$/g, '');
  if (h === '*') return true;
  const inner = h.startsWith('"') ? (h.length >= 2 && h.endsWith('"') ? h.slice(1, -1) : '\u0000') : h;
  return versionOk(inner);
}

// ---------------------------------------------------------------- helpers

/** Answers per property, `status code` → count: printed, so a run shows what it exercised. */
const tally = new Map<string, number>();
function summary(name: string): void {
  const line = [...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}×${n}`);
  console.log(`fuzz ${name} (seed ${SEED}): ${line.join(', ')}`);
  tally.clear();
}

/** Every answer: never a 5xx; a 4xx is problem+json with a code. */
function checkAnswer(r: RawResponse, what: string): void {
  const k = `${r.status}${r.json?.code ? ` ${r.json.code}` : ''}`;
  tally.set(k, (tally.get(k) ?? 0) + 1);
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  if (r.status >= 400) {
    expect(r.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
    expect(typeof r.json?.code, `${what}: ${r.text.slice(0, 300)}`).toBe('string');
  }
}

/** After a refusal: the digest has not moved. After anything the log may have taken: wait, then re-read it. */
async function settle(r: RawResponse, what: string): Promise<void> {
  if (r.status === 400 || r.status === 413 || r.status === 415 || r.status === 431) {
    expect(await digestOf(node), `${what} changed the store`).toBe(digest);
    return;
  }
  await waitApplied(node, r.headers.get('lagoon-session'));
  digest = await digestOf(node);
}

const J: [string, string] = ['Content-Type', 'application/json'];

const awkwardKeys = fc.constantFrom(
  '',
  '.',
  '..',
  '/',
  '%',
  '%25',
  '?',
  '#',
  ' ',
  'a/../b',
  '\u2028',
  '\ufeff',
  '\uffff',
  '\u{10ffff}',
  '\u0085',
  '\ud800',
  '\udc00x',
  'x'.repeat(1024),
  'x'.repeat(1025),
  '€'.repeat(341),
  '€'.repeat(342),
  '😀'.repeat(256),
  '😀'.repeat(257),
);

describe('fuzz: never a 5xx, 2xx only for valid input, refusals change nothing', () => {
  it('arbitrary keys (unicode, control characters, lone surrogates, lengths at the limit)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 24 }),
          fc.string({ unit: 'grapheme', minLength: 240, maxLength: 300 }),
          awkwardKeys,
        ),
        async (key) => {
          const what = `PUT key ${JSON.stringify(key).slice(0, 120)}`;
          const value = { n: ++counter };
          const r = await rawRequest(node.port, {
            method: 'PUT',
            path: `/v1/kv/${percentEncode(key)}`,
            headers: [J],
            body: JSON.stringify(value),
          });
          checkAnswer(r, what);
          if (keyOk(key)) {
            expect(r.status, `${what}: ${r.text}`).toBe(200);
            expect(r.json.key).toBe(key);
          } else {
            expect(r.status, `${what}: ${r.text}`).toBe(400);
            expect(r.json.code).toBe('invalid_key');
          }
          await settle(r, what);
          if (r.status === 200) {
            const got = await rawRequest(node.port, { method: 'GET', path: `/v1/kv/${percentEncode(key)}` });
            expect(got.status).toBe(200);
            expect(
              got.text.startsWith(`{"key":${JSON.stringify(key)},"value":${JSON.stringify(value)},`),
            ).toBe(true);
          }
        },
      ),
      { numRuns: runs(60), seed: SEED },
    );
    summary('keys');
  });

  it('arbitrary JSON values (deep nesting, huge numbers, __proto__ members) read back canonical', async () => {
    const deep = fc
      .tuple(fc.integer({ min: 995, max: 1005 }), fc.boolean(), fc.jsonValue({ maxDepth: 0 }))
      .map(([d, arrays, leaf]) => {
        let text = JSON.stringify(leaf);
        for (let i = 0; i < d; i++) text = arrays ? `[${text}]` : `{"k":${text}}`;
        return text;
      });
    const protoMembers = fc
      .array(
        fc.tuple(
          fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        { maxLength: 4 },
      )
      .map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
    const numbers = fc
      .oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.constantFrom(2 ** 53, -(2 ** 53), 2 ** 53 - 1, 1e21, 1e20, -0, 5e-324),
      )
      .map((n) => JSON.stringify([n]));
    const texts = fc.oneof(
      fc
        .jsonValue({ maxDepth: 6 })
        .chain((v) => fc.constantFrom(JSON.stringify(v), JSON.stringify(v, null, 2))),
      fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }).map((v) => JSON.stringify(v)),
      deep,
      protoMembers,
      numbers,
    );
    await fc.assert(
      fc.asyncProperty(texts, async (text) => {
        const key = `fz/v/${++counter}`;
        const what = `PUT value ${text.slice(0, 120)}`;
        const r = await rawRequest(node.port, {
          method: 'PUT',
          path: `/v1/kv/${percentEncode(key)}`,
          headers: [J],
          body: text,
        });
        checkAnswer(r, what);
        const parsed = JSON.parse(text);
        if (valueOk(parsed)) expect(r.status, `${what}: ${r.text}`).toBe(200);
        else {
          expect(r.status, `${what}: ${r.text}`).toBe(400);
          expect(['invalid_value', 'unsafe_integer']).toContain(r.json.code);
        }
        await settle(r, what);
        if (r.status === 200) {
          const got = await rawRequest(node.port, { method: 'GET', path: `/v1/kv/${percentEncode(key)}` });
          expect(got.status).toBe(200);
          // Canonical: JSON.parse then JSON.stringify of what was sent (whitespace gone, duplicates resolved).
          const canonical = JSON.stringify(parsed);
          expect(
            got.text.startsWith(`{"key":${JSON.stringify(key)},"value":${canonical},"version":`),
            what,
          ).toBe(true);
        }
      }),
      { numRuns: runs(60), seed: SEED },
    );
    summary('values');
  });

  it('arbitrary header values on writes and reads', async () => {
    const realToken = () => encodeSession(tag, new Map([[0, 0]]));
    // Header values as bytes on the wire: latin1, no CR/LF (those would end the header, not fuzz it).
    const byte = (min: number, max: number) =>
      fc
        .integer({ min, max })
        .filter((c) => c !== 10 && c !== 13)
        .map((c) => String.fromCharCode(c));
    // Mostly absent; when present, mostly a telling value, else printable text, now and then any latin1 byte.
    const value = (...specials: string[]) =>
      fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        { weight: 4, arbitrary: fc.constantFrom(...specials) },
        { weight: 2, arbitrary: fc.string({ unit: byte(0x20, 0x7e), maxLength: 40 }) },
        { weight: 1, arbitrary: fc.string({ unit: byte(0, 0xff), maxLength: 40 }) },
      );
    const headers = fc.record({
      'If-Match': value('*', '"0-0"', '0-5', 'W/"0-1"', '"0-1", "0-2"', ' * ', '"1-99999999999999999999"'),
      'If-None-Match': value('*', ' *', '"0-0"', '**'),
      'Idempotency-Key': value('k-1', 'k 1', '', 'x'.repeat(256), 'x'.repeat(257)),
      'Lagoon-Session': value(
        '',
        'session',
        's1.',
        `s1.${Buffer.from(`${'0'.repeat(8)}|0:1`).toString('base64url')}`,
      ),
      'Lagoon-Write-Mode': value('strict', 'buffered', 'BUFFERED', ' strict ', 'fast'),
      'Lagoon-Read-Buffered': value('true', 'false', 'TRUE', 'yes'),
    });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), headers, fc.boolean(), async (isWrite, h, useRealToken) => {
        const hs = { ...h };
        if (useRealToken && hs['Lagoon-Session'] !== undefined) hs['Lagoon-Session'] = realToken();
        const sent = Object.entries(hs).filter((e): e is [string, string] => e[1] !== undefined);
        const key = `fz/h/${++counter % 7}`;
        const what = `${isWrite ? 'PUT' : 'GET'} ${JSON.stringify(sent)}`;
        const r = await rawRequest(node.port, {
          method: isWrite ? 'PUT' : 'GET',
          path: `/v1/kv/${percentEncode(key)}${isWrite ? '?timeoutMs=30000' : ''}`,
          headers: isWrite ? [J, ...sent] : sent,
          ...(isWrite ? { body: JSON.stringify({ n: counter }) } : {}),
        });
        checkAnswer(r, what);
        // The oracle. Node trims spaces and tabs around a header value; a control character is not HTTP.
        const v = (name: keyof typeof hs) => hs[name]?.replace(/^[ \t]+|[ \t]+$/g, '');
        const ctl = sent.some(([, x]) =>
          [...x].some((c) => (c.charCodeAt(0) < 0x20 && c !== '\t') || c.charCodeAt(0) === 0x7f),
        );
        const session = v('Lagoon-Session');
        let valid = !ctl && (session === undefined || session === '' || session === realToken());
        if (isWrite) {
          const im = v('If-Match');
          const inm = v('If-None-Match');
          const idem = v('Idempotency-Key');
          const mode = v('Lagoon-Write-Mode');
          valid &&=
            (im === undefined || ifMatchOk(im)) &&
            (inm === undefined || inm === '*') &&
            !(im !== undefined && inm !== undefined) &&
            (idem === undefined || /^[\x21-\x7e]{1,256}$/.test(idem)) &&
            (mode === undefined || ['strict', 'buffered'].includes(mode.toLowerCase()));
        } else {
          const rb = v('Lagoon-Read-Buffered');
          valid &&= rb === undefined || ['true', 'false'].includes(rb.toLowerCase());
        }
        if (valid) {
          // Taken: written or read (404 for a key not written yet), or decided by the log (412 a condition, 422
          // an idempotency key already used for another body).
          expect([200, 202, 404, 412, 422], `${what}: ${r.text.slice(0, 300)}`).toContain(r.status);
        } else {
          expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(400);
        }
        if (isWrite || r.status === 400) await settle(r, what);
      }),
      { numRuns: runs(100), seed: SEED },
    );
    summary('headers');
  });

  it('arbitrary batch bodies', async () => {
    const goodKey = fc
      .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 })
      .map((s) => `fz/b/${s}`);
    const anyKey = fc.oneof(
      { weight: 6, arbitrary: goodKey },
      { weight: 1, arbitrary: fc.constantFrom<unknown>('', 'a\u0000', '\ud800', 'x'.repeat(1025), 5, null) },
    );
    const scalar = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null));
    const validOp = fc.oneof(
      fc.record(
        {
          op: fc.constant('put'),
          key: goodKey,
          value: fc.oneof({ weight: 4, arbitrary: scalar }, fc.jsonValue({ maxDepth: 2 })),
          ttl: fc.integer({ min: 1, max: 315_360_000 }),
          ifMatch: fc.constantFrom('*', '0-0', '"0-1"'),
        },
        { requiredKeys: ['op', 'key', 'value'] },
      ),
      fc.record(
        { op: fc.constant('put'), key: goodKey, value: scalar, ifNoneMatch: fc.constantFrom('*', true) },
        { requiredKeys: ['op', 'key', 'value'] },
      ),
      fc.record({ op: fc.constant('delete'), key: goodKey }),
    );
    const randomOp = fc.record(
      {
        op: fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom('put', 'delete') },
          fc.constantFrom<unknown>('upsert', 1),
        ),
        key: anyKey,
        value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(2 ** 60, 'v')),
        ttl: fc.oneof(fc.integer({ min: -2, max: 400_000_000 }), fc.constantFrom<unknown>(1.5, '5', 86_400)),
        ifMatch: fc.oneof(
          fc.constantFrom('*', '0-0', '"0-1"', 'W/"0-1"', 'abc', ' *'),
          fc.string({ maxLength: 6 }),
        ),
        ifNoneMatch: fc.constantFrom<unknown>('*', true, false, 'x'),
        extra: fc.constant(1),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      { weight: 5, arbitrary: fc.array(validOp, { minLength: 1, maxLength: 4 }).map((ops) => ({ ops })) },
      {
        weight: 4,
        arbitrary: fc
          .array(fc.oneof({ weight: 3, arbitrary: validOp }, randomOp), { minLength: 0, maxLength: 4 })
          .map((ops) => ({ ops })),
      },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      { weight: 1, arbitrary: fc.record({ ops: fc.array(validOp, { maxLength: 2 }), x: fc.constant(1) }) },
    );
    /** The oracle for a batch body. */
    const batchOk = (b: unknown): boolean => {
      if (b === null || typeof b !== 'object' || Array.isArray(b)) return false;
      const keys = Object.keys(b);
      if (keys.length !== 1 || keys[0] !== 'ops') return false;
      const ops = (b as { ops: unknown }).ops;
      if (!Array.isArray(ops) || ops.length === 0 || ops.length > 1000) return false;
      const seen = new Set<string>();
      for (const o of ops as Array<Record<string, unknown>>) {
        if (Object.keys(o).some((k) => !['op', 'key', 'value', 'ttl', 'ifMatch', 'ifNoneMatch'].includes(k)))
          return false;
        if (o.op !== 'put' && o.op !== 'delete') return false;
        if (!keyOk(o.key) || seen.has(o.key as string)) return false;
        seen.add(o.key as string);
        if (
          o.ttl !== undefined &&
          !(Number.isInteger(o.ttl) && (o.ttl as number) >= 1 && (o.ttl as number) <= 315_360_000)
        )
          return false;
        if (o.ifNoneMatch !== undefined && o.ifNoneMatch !== '*' && o.ifNoneMatch !== true) return false;
        if (o.ifMatch !== undefined) {
          const m = o.ifMatch as string;
          if (m.length > 300 || !ifMatchOk(m.startsWith('"') || m === '*' ? m : `"${m}"`)) return false;
        }
        if (o.ifMatch !== undefined && o.ifNoneMatch !== undefined) return false;
        if (o.op === 'put' && (o.value === undefined || !valueOk(o.value))) return false;
        if (o.op === 'delete' && (o.value !== undefined || o.ttl !== undefined)) return false;
      }
      return true;
    };
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const text = JSON.stringify(b);
        const what = `batch ${text.slice(0, 200)}`;
        const r = await rawRequest(node.port, {
          method: 'POST',
          path: '/v1/batch?timeoutMs=30000',
          headers: [J],
          body: text,
        });
        checkAnswer(r, what);
        if (batchOk(JSON.parse(text))) {
          // Applied, or rejected as a whole by an op's condition (nothing of it applied).
          expect([200, 412], `${what}: ${r.text.slice(0, 300)}`).toContain(r.status);
        } else {
          expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBe(400);
        }
        await settle(r, what);
      }),
      { numRuns: runs(80), seed: SEED },
    );
    summary('batches');
  });
});
