import { describe, expect, it } from 'vitest';
import {
  type DecideContext,
  decide,
  type Entry,
  IDEM_WINDOW_MS,
  isLive,
  WID_WINDOW_MS,
} from '../../../src/core/decide.js';
import { type DecodedRecord, requestFingerprint } from '../../../src/core/record.js';

const ctx = (over: Partial<DecideContext> = {}): DecideContext => ({
  partition: 2,
  offset: 10,
  timestamp: 1000,
  ...over,
});
const entry = (over: Partial<Entry> = {}): Entry => ({
  key: 'k',
  value: '"old"',
  version: '2-5',
  updatedAt: 500,
  expiresAt: null,
  ...over,
});
const put = (over: Record<string, unknown> = {}): DecodedRecord =>
  ({ v: 1, op: 'put', key: 'k', value: { n: 1 }, wid: 'w', ...over }) as DecodedRecord;
const del = (over: Record<string, unknown> = {}): DecodedRecord =>
  ({ v: 1, op: 'del', key: 'k', wid: 'w', ...over }) as DecodedRecord;

describe('isLive', () => {
  it('judges expiry by the given log time, boundary exclusive', () => {
    expect(isLive(undefined, 0)).toBe(false);
    expect(isLive(entry(), Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(isLive(entry({ expiresAt: 1000 }), 999)).toBe(true);
    expect(isLive(entry({ expiresAt: 1000 }), 1000)).toBe(false);
    expect(isLive(entry({ expiresAt: 1000 }), 1001)).toBe(false);
  });
});

describe('decide', () => {
  it('puts with version, log time and canonical JSON', () => {
    expect(decide(undefined, put(), ctx())).toEqual({
      kind: 'put',
      entry: { key: 'k', value: '{"n":1}', version: '2-10', updatedAt: 1000, expiresAt: null },
    });
    expect(decide(entry(), put({ value: null }), ctx())).toMatchObject({
      kind: 'put',
      entry: { value: 'null' },
    });
  });

  it('sets expiresAt = timestamp + ttlMs', () => {
    expect(decide(undefined, put({ ttlMs: 250 }), ctx())).toMatchObject({
      kind: 'put',
      entry: { expiresAt: 1250 },
    });
  });

  it('deletes, including an absent key (idempotent tombstone)', () => {
    expect(decide(entry(), del(), ctx())).toEqual({ kind: 'delete' });
    expect(decide(undefined, del(), ctx())).toEqual({ kind: 'delete' });
    expect(decide(entry({ expiresAt: 1000 }), del(), ctx())).toEqual({ kind: 'delete' });
  });

  it('rejects invalid records and ignores heartbeats', () => {
    expect(decide(entry(), { op: 'invalid', reason: 'x', key: 'k' }, ctx())).toEqual({
      kind: 'reject',
      reason: 'invalid_record',
    });
    expect(decide(undefined, { v: 1, op: 'hb', node: 'n' }, ctx())).toEqual({ kind: 'noop' });
  });

  describe('If-Match', () => {
    it('applies when the version is the current one', () => {
      expect(decide(entry(), put({ ifMatch: '2-5' }), ctx()).kind).toBe('put');
      expect(decide(entry(), del({ ifMatch: '2-5' }), ctx()).kind).toBe('delete');
      expect(decide(entry(), put({ ifMatch: '*' }), ctx()).kind).toBe('put');
    });
    it('rejects another version', () => {
      for (const r of [put({ ifMatch: '2-4' }), del({ ifMatch: '2-6' }), put({ ifMatch: '1-5' })]) {
        expect(decide(entry(), r, ctx())).toEqual({ kind: 'reject', reason: 'version_mismatch' });
      }
    });
    it('rejects not_found when the key is absent or expired at log time', () => {
      expect(decide(undefined, put({ ifMatch: '2-5' }), ctx())).toEqual({
        kind: 'reject',
        reason: 'not_found',
      });
      expect(decide(undefined, del({ ifMatch: '*' }), ctx())).toEqual({
        kind: 'reject',
        reason: 'not_found',
      });
      const expired = entry({ expiresAt: 1000 });
      expect(decide(expired, put({ ifMatch: '2-5' }), ctx())).toEqual({
        kind: 'reject',
        reason: 'not_found',
      });
      expect(decide(expired, put({ ifMatch: '2-5' }), ctx({ timestamp: 999 })).kind).toBe('put');
    });
  });

  describe('If-None-Match: *', () => {
    it('creates when absent or expired', () => {
      expect(decide(undefined, put({ ifNoneMatch: true }), ctx()).kind).toBe('put');
      expect(decide(entry({ expiresAt: 1000 }), put({ ifNoneMatch: true }), ctx()).kind).toBe('put');
      expect(decide(undefined, del({ ifNoneMatch: true }), ctx()).kind).toBe('delete');
    });
    it('rejects already_exists when live', () => {
      expect(decide(entry(), put({ ifNoneMatch: true }), ctx())).toEqual({
        kind: 'reject',
        reason: 'already_exists',
      });
      expect(decide(entry({ expiresAt: 1001 }), put({ ifNoneMatch: true }), ctx())).toEqual({
        kind: 'reject',
        reason: 'already_exists',
      });
      expect(decide(entry(), del({ ifNoneMatch: true }), ctx()).kind).toBe('reject');
    });
  });

  describe('idempotency', () => {
    const seen = (version: string, r: DecodedRecord, at = 900) => ({
      version,
      at,
      fp: requestFingerprint(r as Parameters<typeof requestFingerprint>[0]),
    });
    it('reports a retry of the same request as a duplicate of the first attempt, before any condition', () => {
      const r = put({ idem: 'i' });
      expect(decide(entry(), r, ctx({ seenIdem: seen('2-3', r) }))).toEqual({ kind: 'duplicate', of: '2-3' });
      const c = put({ idem: 'i', ifMatch: '9-9' });
      expect(decide(entry(), c, ctx({ seenIdem: seen('2-3', c) }))).toEqual({ kind: 'duplicate', of: '2-3' });
      const d = del({ idem: 'i' });
      expect(decide(undefined, d, ctx({ seenIdem: seen('2-3', d) }))).toEqual({
        kind: 'duplicate',
        of: '2-3',
      });
      // Same value, members in another order: the same request.
      const a = put({ idem: 'i', value: { a: 1, b: [1, { c: 2, d: 3 }] } });
      const b = put({ idem: 'i', value: { b: [1, { d: 3, c: 2 }], a: 1 } });
      expect(decide(undefined, b, ctx({ seenIdem: seen('2-3', a) }))).toEqual({
        kind: 'duplicate',
        of: '2-3',
      });
    });
    it('rejects another request under the same key as idempotency_key_reused, whatever the state', () => {
      const first = put({ idem: 'i', value: 1 });
      const others = [
        put({ idem: 'i', value: 2 }),
        del({ idem: 'i' }),
        put({ idem: 'i', value: 1, ifMatch: '2-5' }),
        put({ idem: 'i', value: 1, ifNoneMatch: true }),
        put({ idem: 'i', value: 1, ttlMs: 1000 }),
        put({ idem: 'i', value: 1, key: 'other' }),
      ];
      for (const r of others) {
        expect(decide(entry(), r, ctx({ seenIdem: seen('2-3', first) }))).toEqual({
          kind: 'reject',
          reason: 'idempotency_key_reused',
        });
      }
    });
    it('treats legacy entries (no fingerprint) as the same request', () => {
      expect(
        decide(entry(), put({ idem: 'i', value: 9 }), ctx({ seenIdem: { version: '2-3', fp: null, at: 0 } })),
      ).toEqual({ kind: 'duplicate', of: '2-3' });
    });
    it('forgets an idempotency key after IDEM_WINDOW_MS of log time', () => {
      const r = put({ idem: 'i' });
      const s = seen('2-3', r, 1000);
      expect(decide(undefined, r, ctx({ seenIdem: s, timestamp: 1000 + IDEM_WINDOW_MS - 1 })).kind).toBe(
        'duplicate',
      );
      expect(decide(undefined, r, ctx({ seenIdem: s, timestamp: 1000 + IDEM_WINDOW_MS })).kind).toBe('put');
    });
    it('applies the first attempt, and ignores seenIdem for records without idem', () => {
      expect(decide(undefined, put({ idem: 'i' }), ctx()).kind).toBe('put');
      expect(decide(undefined, put(), ctx({ seenIdem: { version: '2-3', fp: 'x', at: 900 } })).kind).toBe(
        'put',
      );
    });
    it('lets invalid records stay invalid even with seenIdem', () => {
      expect(
        decide(
          undefined,
          { op: 'invalid', reason: 'x', key: null },
          ctx({ seenIdem: { version: '1-1', fp: null, at: 900 } }),
        ).kind,
      ).toBe('reject');
    });
  });

  describe('second copies of a record (same write id)', () => {
    it('are duplicates of the first copy, before idempotency and conditions', () => {
      const cond = put({ ifNoneMatch: true });
      // The first copy created the key; deciding the copy again would reject it (already_exists).
      expect(decide(entry(), cond, ctx({ seenWid: { version: '2-5', at: 990 } }))).toEqual({
        kind: 'duplicate',
        of: '2-5',
      });
      expect(
        decide(
          entry(),
          put({ idem: 'i', value: 2 }),
          ctx({ seenWid: { version: '2-5', at: 990 }, seenIdem: { version: '2-1', fp: 'other', at: 990 } }),
        ),
      ).toEqual({ kind: 'duplicate', of: '2-5' });
    });
    it('are forgotten after WID_WINDOW_MS of log time', () => {
      const w = { version: '2-5', at: 1000 };
      expect(decide(undefined, put(), ctx({ seenWid: w, timestamp: 1000 + WID_WINDOW_MS - 1 })).kind).toBe(
        'duplicate',
      );
      expect(decide(undefined, put(), ctx({ seenWid: w, timestamp: 1000 + WID_WINDOW_MS })).kind).toBe('put');
    });
    it('If-Match with the version of a copy stands for the original', () => {
      const resolveVersion = (v: string) => (v === '2-9' ? '2-5' : v);
      expect(decide(entry(), put({ ifMatch: '2-9' }), ctx({ resolveVersion })).kind).toBe('put');
      expect(decide(entry(), put({ ifMatch: '2-9' }), ctx()).kind).toBe('reject');
    });
  });

  describe("a strict write's deadline (record dl)", () => {
    it("applies when appended by its deadline, boundary inclusive, judged by the record's own append time", () => {
      expect(decide(undefined, put({ dl: 1000 }), ctx({ timestamp: 1000 })).kind).toBe('put');
      expect(decide(undefined, put({ dl: 1000 }), ctx({ timestamp: 1200, appendTime: 999 })).kind).toBe(
        'put',
      );
      expect(decide(undefined, del({ dl: 5000 }), ctx()).kind).toBe('delete');
    });
    it('is rejected deadline_passed when it landed later, before any condition or idempotency check', () => {
      expect(decide(undefined, put({ dl: 999 }), ctx({ timestamp: 1000 }))).toEqual({
        kind: 'reject',
        reason: 'deadline_passed',
      });
      expect(decide(entry(), del({ dl: 500 }), ctx({ appendTime: 501 }))).toEqual({
        kind: 'reject',
        reason: 'deadline_passed',
      });
      // A late first attempt does not claim the idempotency key, nor replay an earlier attempt's outcome.
      expect(
        decide(
          entry(),
          put({ dl: 1, idem: 'i', ifNoneMatch: true }),
          ctx({ seenIdem: { version: '2-1', fp: 'x', at: 990 } }),
        ),
      ).toEqual({ kind: 'reject', reason: 'deadline_passed' });
    });
    it('a second copy of an applied record stays a duplicate, even when the copy itself is late', () => {
      expect(
        decide(entry(), put({ dl: 1 }), ctx({ seenWid: { version: '2-5', at: 990 }, timestamp: 2000 })),
      ).toEqual({ kind: 'duplicate', of: '2-5' });
    });
  });
});
