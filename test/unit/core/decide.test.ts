import { describe, expect, it } from 'vitest';
import { type DecideContext, decide, type Entry, isLive } from '../../../src/core/decide.js';
import type { DecodedRecord } from '../../../src/core/record.js';

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
    it('reports a retry as a duplicate of the first attempt, before any condition', () => {
      expect(decide(entry(), put({ idem: 'i' }), ctx({ seenIdem: '2-3' }))).toEqual({
        kind: 'duplicate',
        of: '2-3',
      });
      expect(decide(entry(), put({ idem: 'i', ifMatch: '9-9' }), ctx({ seenIdem: '2-3' }))).toEqual({
        kind: 'duplicate',
        of: '2-3',
      });
      expect(decide(undefined, del({ idem: 'i' }), ctx({ seenIdem: '2-3' }))).toEqual({
        kind: 'duplicate',
        of: '2-3',
      });
    });
    it('applies the first attempt, and ignores seenIdem for records without idem', () => {
      expect(decide(undefined, put({ idem: 'i' }), ctx()).kind).toBe('put');
      expect(decide(undefined, put(), ctx({ seenIdem: '2-3' })).kind).toBe('put');
    });
    it('lets invalid records stay invalid even with seenIdem', () => {
      expect(
        decide(undefined, { op: 'invalid', reason: 'x', key: null }, ctx({ seenIdem: '1-1' })).kind,
      ).toBe('reject');
    });
  });
});
