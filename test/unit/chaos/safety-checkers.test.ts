import { describe, expect, it } from 'vitest';
import { noFailedValues } from '../../../src/chaos/checkers/no-failed-values.js';
import { noLostWrites } from '../../../src/chaos/checkers/no-lost-writes.js';
import { applied, fin, hist, r, w } from './checker-fixtures.js';

describe('no-lost-writes', () => {
  const w1 = w({ value: 1, version: '0-0' });
  const w2 = w({ value: 2, version: '0-1', invokeAt: 2, completeAt: 3 });
  const good = (node: string) =>
    fin(node, { writes: applied('k', '0-0', '0-1'), values: { k: { value: 2, version: '0-1' } } });

  it('passes when every node applied every acknowledged write and holds the newest', () => {
    const res = noLostWrites(hist([w1, w2], { finals: [good('n1'), good('n2')] }));
    expect(res).toMatchObject({ name: 'no-lost-writes', valid: true, errors: [] });
    expect(res.stats).toMatchObject({ acknowledged: 2, nodes: 2, violations: 0 });
  });

  it('accepts a newer final value from a write of unknown outcome, and duplicates', () => {
    const w3 = w({ value: 3, outcome: 'unknown', invokeAt: 4, completeAt: undefined });
    const n = fin('n1', {
      writes: { '0-0': { status: 'duplicate', key: 'k' }, '0-1': { status: 'applied', key: 'k' } },
      values: { k: { value: 3, version: '0-2' } },
    });
    expect(noLostWrites(hist([w1, w2, w3], { finals: [n] })).valid).toBe(true);
  });

  it('flags a node whose final value is older than an acknowledged write', () => {
    const stale = fin('n2', {
      writes: applied('k', '0-0', '0-1'),
      values: { k: { value: 1, version: '0-0' } },
    });
    const res = noLostWrites(hist([w1, w2], { finals: [good('n1'), stale] }));
    expect(res.valid).toBe(false);
    expect(res.errors.join()).toMatch(/n2.*older than acknowledged write #\d+ at 0-1/);
  });

  it('flags an acknowledged write missing or not applied in a node write log', () => {
    const missing = fin('n2', { writes: applied('k', '0-1'), values: { k: { value: 2, version: '0-1' } } });
    const pending = fin('n3', {
      writes: { ...applied('k', '0-0'), '0-1': { status: 'pending', key: 'k' } },
      values: { k: { value: 2, version: '0-1' } },
    });
    const res = noLostWrites(hist([w1, w2], { finals: [good('n1'), missing, pending] }));
    expect(res.valid).toBe(false);
    expect(res.stats.violations).toBe(2);
    expect(res.errors.join('\n')).toMatch(/n2 reports nothing/);
    expect(res.errors.join('\n')).toMatch(/n3 says pending/);
  });

  it('flags an absent key after an acknowledged put unless a delete may follow', () => {
    const gone = fin('n1', { writes: applied('k', '0-0', '0-1'), values: { k: null } });
    expect(noLostWrites(hist([w1, w2], { finals: [gone] })).valid).toBe(false);
    const del = w({ value: null, outcome: 'unknown', invokeAt: 5, completeAt: undefined });
    expect(noLostWrites(hist([w1, w2, del], { finals: [gone] })).valid).toBe(true);
    const ackedDel = w({ value: null, version: '0-2', invokeAt: 5, completeAt: 6 });
    const n = fin('n1', { writes: applied('k', '0-0', '0-1', '0-2'), values: { k: null } });
    expect(noLostWrites(hist([w1, w2, ackedDel], { finals: [n] })).valid).toBe(true);
  });

  it('flags a key the node did not report, and ignores 412-rejected writes', () => {
    const silent = fin('n1', { writes: applied('k', '0-0', '0-1') });
    expect(noLostWrites(hist([w1, w2], { finals: [silent] })).valid).toBe(false);
    const rejected = w({
      value: 9,
      outcome: 'fail',
      status: 412,
      verdict: 'rejected',
      version: '0-2',
      ifMatch: '0-0',
    });
    expect(noLostWrites(hist([w1, w2, rejected], { finals: [good('n1')] })).valid).toBe(true);
  });

  it('is unknown without any settled report', () => {
    expect(noLostWrites(hist([w1, w2])).valid).toBe('unknown');
  });

  it('caps the listed counter-examples but counts them all', () => {
    const ws = Array.from({ length: 30 }, (_, i) => w({ key: `k${i}`, value: 100 + i, version: `0-${i}` }));
    const res = noLostWrites(hist(ws, { finals: [fin('n1')] }));
    expect(res.errors.length).toBe(10);
    expect(res.stats.violations).toBe(60);
  });
});

describe('no-failed-values', () => {
  const ok = w({ value: 1, version: '0-0' });
  const failed = w({ value: 2, outcome: 'fail', status: 503, code: 'unavailable' });
  const unknown = w({ value: 3, outcome: 'unknown', code: 'client_timeout' });

  it('passes when reads and finals show only ok or unknown writes', () => {
    const reads = [r({ value: 1, version: '0-0' }), r({ value: 3, version: '0-1', consistency: 'eventual' })];
    const finals = [fin('n1', { values: { k: { value: 3, version: '0-1' } } })];
    const res = noFailedValues(hist([ok, failed, unknown, ...reads], { finals }));
    expect(res).toMatchObject({ valid: true, stats: { failedWrites: 1, readsChecked: 2, finalsChecked: 1 } });
  });

  it('flags a read of a definitely failed write', () => {
    const bad = r({ value: 2, version: '0-1', consistency: 'eventual' });
    const res = noFailedValues(hist([ok, failed, bad]));
    expect(res.valid).toBe(false);
    expect(res.errors[0]).toContain(`read #${bad.id}`);
    expect(res.errors[0]).toContain(`failed write #${failed.id}`);
  });

  it('ignores failed reads (they saw nothing)', () => {
    const res = noFailedValues(hist([failed, r({ value: 2, outcome: 'fail' })]));
    expect(res.valid).toBe(true);
  });

  it('flags a 412-rejected value in a final state, by value and by version', () => {
    const rej = w({
      value: 7,
      outcome: 'fail',
      status: 412,
      verdict: 'rejected',
      version: '0-4',
      ifMatch: '0-0',
    });
    const byValue = fin('n1', { values: { k: { value: 7, version: '0-4' } } });
    expect(noFailedValues(hist([ok, rej], { finals: [byValue] })).valid).toBe(false);
    const delRej = w({ value: null, outcome: 'fail', status: 412, verdict: 'rejected', version: '0-5' });
    const byLog = fin('n1', { writes: { '0-5': { status: 'applied', key: 'k' } } });
    expect(noFailedValues(hist([delRej], { finals: [byLog] })).valid).toBe(false);
    const rejectedOk = fin('n1', { writes: { '0-5': { status: 'rejected', key: 'k' } } });
    expect(noFailedValues(hist([delRej], { finals: [rejectedOk] })).valid).toBe(true);
  });
});
