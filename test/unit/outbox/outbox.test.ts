import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseReadBuffered, parseWriteMode } from '../../../src/api/buffered.js';
import { openApiDocument } from '../../../src/api/openapi.js';
import { nodeEnv, parseNodeConfig } from '../../../src/config.js';
import { parseVersion } from '../../../src/core/version.js';
import { isLagoonError } from '../../../src/errors.js';
import { isOutboxId, newOutboxId, Outbox, outboxPathFor } from '../../../src/outbox/outbox.js';
import { tempDir } from '../store/fixtures.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

const entry = (key: string, partition = 0, idem = `g-${key}-${Math.random()}`) => ({
  id: newOutboxId(),
  key,
  partition,
  op: 'put' as const,
  record: Buffer.from(JSON.stringify({ v: 1, op: 'put', value: key, idem, wid: `w-${Math.random()}` })),
  idem,
  fp: `fp-${key}`,
});

describe('Outbox', () => {
  it('keeps entries in order per partition, durably across a reopen, until they are sent', () => {
    const path = join(tmp.dir, 'o.outbox.db');
    let ob = Outbox.open(path, { max: 10 });
    const a1 = ob.add(entry('a'), 1000);
    const b1 = ob.add(entry('b', 1), 2000);
    const a2 = ob.add(entry('a'), 3000);
    expect(ob.stats(5000)).toEqual({ records: 3, oldestSeconds: 4, max: 10 });
    ob.close();
    // Reopened (a restart, or a SIGKILL: every add committed with synchronous=FULL before it returned).
    ob = Outbox.open(path, { max: 10 });
    try {
      expect(ob.stats(5000).records).toBe(3);
      expect(ob.hasPending('a')).toBe(true);
      expect(ob.head(0, 10).map((e) => e.id)).toEqual([a1.id, a2.id]);
      expect(ob.head(0, 10)[0]!.record).toEqual(a1.record);
      expect(ob.partitionsPending().sort()).toEqual([0, 1]);
      expect(ob.latestFor('a')?.id).toBe(a2.id);
      expect(ob.pendingByIdem('a', a1.idem)?.id).toBe(a1.id);
      expect(ob.lookup(a1.id)).toMatchObject({ state: 'buffered', entry: { key: 'a' } });

      ob.markSent(ob.head(0, 1)[0]!, 42, 6000);
      expect(ob.lookup(a1.id)).toMatchObject({ state: 'sent', partition: 0, offset: 42, sentAt: 6000 });
      expect(ob.latestFor('a')?.id).toBe(a2.id);
      ob.markSent(ob.head(0, 1)[0]!, 43, 6000);
      ob.markSent(ob.head(1, 1)[0]!, 7, 6000);
      expect(ob.hasPending('a')).toBe(false);
      expect(ob.stats(9000)).toEqual({ records: 0, oldestSeconds: 0, max: 10 });
      expect(ob.partitionsPending()).toEqual([]);
      expect(ob.lookup(b1.id)).toMatchObject({ state: 'sent', offset: 7 });
      // Sent positions are local bookkeeping, forgotten after a while.
      expect(ob.purgeSent(6001)).toBe(3);
      expect(ob.lookup(b1.id)).toBeUndefined();
    } finally {
      ob.close();
    }
  });

  it('refuses beyond its bound, definitely, storing nothing', () => {
    const ob = Outbox.open(join(tmp.dir, 'full.db'), { max: 2 });
    try {
      ob.add(entry('a'));
      ob.add(entry('b'));
      try {
        ob.add(entry('c'));
        expect.unreachable();
      } catch (e) {
        expect(isLagoonError(e) && [e.code, e.status, e.definite, e.retryable]).toEqual([
          'outbox_full',
          503,
          true,
          true,
        ]);
      }
      expect(ob.stats().records).toBe(2);
      expect(ob.hasPending('c')).toBe(false);
    } finally {
      ob.close();
    }
  });

  it('waitKeyClear resolves once the key is sent, or false at its deadline', async () => {
    const ob = Outbox.open(join(tmp.dir, 'w.db'), { max: 10 });
    try {
      ob.add(entry('a'));
      ob.add(entry('b'));
      expect(await ob.waitKeyClear('a', 50)).toBe(false);
      const waiting = ob.waitKeyClear('a', 60_000);
      ob.markSent(ob.head(0, 1)[0]!, 1);
      expect(await waiting).toBe(true);
      expect(await ob.waitKeyClear('b', 60_000, () => true)).toBe(false);
      expect(await ob.waitKeyClear('nothing', 0)).toBe(true);
    } finally {
      ob.close();
    }
  });

  it('ids can never be taken for versions, and the file sits beside the store', () => {
    for (let i = 0; i < 200; i++) {
      const id = newOutboxId();
      expect(isOutboxId(id)).toBe(true);
      expect(parseVersion(id)).toBeUndefined();
    }
    expect(isOutboxId('3-1042')).toBe(false);
    expect(outboxPathFor('/d/n1/lagoon.db')).toBe('/d/n1/lagoon.outbox.db');
    expect(outboxPathFor('/d/n1/store')).toBe('/d/n1/store.outbox.db');
  });
});

describe('write mode and read-buffered headers', () => {
  it('parses strict|buffered, falls back to the node default, refuses anything else with a stable code', () => {
    expect(parseWriteMode(undefined, 'strict')).toBe('strict');
    expect(parseWriteMode(undefined, 'buffered')).toBe('buffered');
    expect(parseWriteMode('Buffered', 'strict')).toBe('buffered');
    expect(parseWriteMode('strict', 'buffered')).toBe('strict');
    for (const bad of ['', 'lazy', 'strict,buffered']) {
      try {
        parseWriteMode(bad, 'strict');
        expect.unreachable();
      } catch (e) {
        expect(isLagoonError(e) && [e.code, e.status]).toEqual(['invalid_write_mode', 400]);
      }
    }
    expect(parseReadBuffered(undefined)).toBe(false);
    expect(parseReadBuffered('true')).toBe(true);
    expect(parseReadBuffered('false')).toBe(false);
    expect(() => parseReadBuffered('1')).toThrow(/Lagoon-Read-Buffered/);
  });

  it('reads LAGOON_WRITE_MODE, LAGOON_OUTBOX_MAX and LAGOON_BOOKKEEPING_RETENTION_MS', () => {
    const base = { id: 'n1', port: 8081, db: '/tmp/x.db', kafka: { brokers: '127.0.0.1:9092' } };
    const d = parseNodeConfig(base);
    expect([d.writeMode, d.outboxMax, d.bookkeepingRetentionMs]).toEqual([
      'strict',
      100_000,
      24 * 3600 * 1000,
    ]);
    const env = nodeEnv({
      LAGOON_WRITE_MODE: 'buffered',
      LAGOON_OUTBOX_MAX: '5',
      LAGOON_BOOKKEEPING_RETENTION_MS: '3600000',
    });
    const c = parseNodeConfig({ ...base, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v)) });
    expect([c.writeMode, c.outboxMax, c.bookkeepingRetentionMs]).toEqual(['buffered', 5, 3_600_000]);
    expect(() => parseNodeConfig({ ...base, writeMode: 'eventual' })).toThrow(/writeMode/);
    // Shorter than the write-id window: a remembered write id would point at a forgotten verdict.
    expect(() => parseNodeConfig({ ...base, bookkeepingRetentionMs: 60_000 })).toThrow(
      /bookkeepingRetentionMs/,
    );
  });
});

describe('OpenAPI', () => {
  it('documents the write-mode and read-buffered headers, the 202 buffered answer and /v1/writes/{id}', () => {
    const config = parseNodeConfig({
      id: 'n1',
      port: 1,
      db: '/tmp/x.db',
      kafka: { brokers: '127.0.0.1:9092' },
    });
    // biome-ignore lint/suspicious/noExplicitAny: the document is walked field by field
    const doc = openApiDocument(config) as any;
    const put = doc.paths['/v1/kv/{key}'].put;
    const mode = put.parameters.find((p: { name: string }) => p.name === 'Lagoon-Write-Mode');
    expect(mode.schema.enum).toEqual(['strict', 'buffered']);
    const accepted = put.responses[202].content['application/json'].schema.oneOf;
    expect(
      accepted.some(
        (s: { properties: { status: { const?: string } } }) => s.properties.status.const === 'buffered',
      ),
    ).toBe(true);
    expect(put.responses[503].description).toContain('outbox_full');
    const get = doc.paths['/v1/kv/{key}'].get;
    expect(get.parameters.map((p: { name: string }) => p.name)).toContain('Lagoon-Read-Buffered');
    expect(get.responses[200].headers['Lagoon-Read-Source']).toBeDefined();
    const writes = doc.paths['/v1/writes/{version}'].get;
    expect(writes.parameters[0].description).toContain('ob-');
    expect(writes.responses[404]).toBeDefined();
  });
});
