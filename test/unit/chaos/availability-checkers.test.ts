import { describe, expect, it } from 'vitest';
import { availability } from '../../../src/chaos/checkers/availability.js';
import { eventualAvailability } from '../../../src/chaos/checkers/eventual-availability.js';
import { checkAll, checkers, overallValid } from '../../../src/chaos/checkers/index.js';
import type { FaultWindow, ReadOp, WriteOp } from '../../../src/chaos/history.js';
import { fin, hist, r, w } from './checker-fixtures.js';

const outage: FaultWindow = { kind: 'all-brokers-down', target: 'brokers 1,2,3', startAt: 100, endAt: 200 };
const eventual = (t: number, p: Partial<ReadOp> = {}) =>
  r({ consistency: 'eventual', invokeAt: t, completeAt: t + 1, ...p });

describe('eventual-availability', () => {
  it('passes when every eventual read inside the outage was served', () => {
    const ops = [
      eventual(150),
      eventual(199, { value: 3, version: '0-1' }),
      eventual(250, { outcome: 'fail' }),
    ];
    const res = eventualAvailability(hist(ops, { faults: [outage] }));
    expect(res).toMatchObject({ valid: true, stats: { windows: 1, attempted: 2, served: 2, notServed: 0 } });
  });

  it('flags an eventual read that failed during the outage; strong reads may fail', () => {
    const bad = eventual(150, { outcome: 'fail', status: 503, code: 'unavailable' });
    const strong = r({ consistency: 'strong', invokeAt: 120, outcome: 'fail', status: 503 });
    const res = eventualAvailability(hist([eventual(120), bad, strong], { faults: [outage] }));
    expect(res.valid).toBe(false);
    expect(res.stats).toMatchObject({ attempted: 2, served: 1 });
    expect(res.errors[0]).toMatch(new RegExp(`eventual read #${bad.id} .* ended fail \\(503 unavailable\\)`));
  });

  it('is unknown without eventual reads in an outage, and honours explicit windows', () => {
    const other: FaultWindow = { ...outage, kind: 'kill-leader' };
    expect(eventualAvailability(hist([eventual(150, { outcome: 'fail' })], { faults: [other] })).valid).toBe(
      'unknown',
    );
    const res = eventualAvailability(hist([eventual(150, { outcome: 'unknown' })], { faults: [other] }), {
      outageWindows: [{ startAt: 140, endAt: 160 }],
    });
    expect(res.valid).toBe(false);
  });
});

describe('availability', () => {
  const kill: FaultWindow = { kind: 'kill-leader', target: 'broker 2', startAt: 100, endAt: 200 };
  const at = (t: number, outcome: WriteOp['outcome'], p: Partial<WriteOp> = {}) =>
    w({ value: t, invokeAt: t, completeAt: t + 5, outcome, ...p });
  const ops = [
    at(10, 'ok'),
    at(110, 'fail', { status: 503 }),
    at(120, 'unknown', { completeAt: undefined }),
    at(130, 'fail', { status: 412, verdict: 'rejected' }),
    at(150, 'ok'),
    at(210, 'fail', { status: 503 }),
    at(230, 'ok'),
  ];

  it('reports shares per window and outside, and the recovery time', () => {
    const res = availability(hist(ops, { faults: [kill] }));
    expect(res.valid).toBe(true);
    expect(res.stats).toMatchObject({
      windows: 1,
      'w0.kill-leader.writes': 4,
      'w0.kill-leader.failed': 1,
      'w0.kill-leader.unknown': 1,
      'w0.kill-leader.failedShare': 0.25,
      'outside.writes': 3,
      'outside.failed': 1,
      // Last unserved write (invoked at 210, done 215) → first ok completion after it (235), from 100.
      'w0.kill-leader.recoveryMs': 135,
      maxRecoveryMs: 135,
      notRecovered: 0,
    });
  });

  it('reports 0 without failures and -1 without recovery', () => {
    expect(availability(hist([at(150, 'ok')], { faults: [kill] })).stats['w0.kill-leader.recoveryMs']).toBe(
      0,
    );
    const never = availability(hist([at(150, 'fail')], { faults: [kill] }));
    expect(never.stats).toMatchObject({ 'w0.kill-leader.recoveryMs': -1, notRecovered: 1 });
  });

  it('fails a window over its failed-write budget', () => {
    expect(availability(hist(ops, { faults: [kill] }), { maxFailedWrites: 0.3 }).valid).toBe(true);
    const res = availability(hist(ops, { faults: [kill] }), { maxFailedWrites: { 'kill-leader': 0.2 } });
    expect(res.valid).toBe(false);
    expect(res.errors[0]).toMatch(/window 0 \(kill-leader\): 1\/4 writes failed \(25.0%\), budget 20.0%/);
    expect(availability(hist(ops, { faults: [kill] }), { maxFailedWrites: { outside: 0 } }).valid).toBe(
      false,
    );
  });
});

describe('checkAll', () => {
  it('runs every checker by name', () => {
    const ops = [
      w({ value: 1, version: '0-0' }),
      r({ value: 1, version: '0-0', invokeAt: 2, completeAt: 3 }),
    ];
    const finals = [
      fin('n1', {
        values: { k: { value: 1, version: '0-0' } },
        writes: { '0-0': { status: 'applied', key: 'k' } },
        digests: [{ partition: 0, appliedOffset: 1, digest: 'x' }],
        endOffsets: { 0: 1 },
      }),
    ];
    const results = checkAll(hist(ops, { finals }));
    expect(results.map((c) => c.name)).toEqual([
      'no-lost-writes',
      'no-failed-values',
      'convergence',
      'session-reads',
      'monotonic-reads',
      'linearizable',
      'eventual-availability',
      'availability',
    ]);
    expect(Object.keys(checkers)).toEqual(results.map((c) => c.name));
    expect(results.filter((c) => c.valid !== true).map((c) => c.name)).toEqual(['eventual-availability']);
    expect(overallValid(results)).toBe('unknown');
    expect(overallValid(results.filter((c) => c.valid === true))).toBe(true);
  });
});
