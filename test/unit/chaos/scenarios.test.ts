import { describe, expect, it } from 'vitest';
import {
  describeAction,
  isScenario,
  MIN_RECOVERY_MS,
  mulberry32,
  planScenario,
  SCENARIOS,
  shuffle,
} from '../../../src/chaos/scenarios.js';

describe('mulberry32', () => {
  it('is deterministic per seed and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(xs).size).toBeGreaterThan(990);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
  });

  it('shuffle is a seeded permutation', () => {
    const s = shuffle(mulberry32(1), [1, 2, 3, 4, 5]);
    expect([...s].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(shuffle(mulberry32(1), [1, 2, 3, 4, 5])).toEqual(s);
  });
});

describe('planScenario', () => {
  it('same seed, same plan; every scenario plans at least one fault inside the load', () => {
    for (const s of SCENARIOS) {
      for (const seed of [1, 7, 123456]) {
        const opts = { seed, durationMs: 30_000, partitions: 6 };
        const plan = planScenario(s, opts);
        expect(planScenario(s, opts)).toEqual(plan);
        expect(plan.faults.length).toBeGreaterThan(0);
        expect(plan.loadMs).toBeGreaterThanOrEqual(30_000);
        for (const f of plan.faults) {
          expect(f.atMs).toBeGreaterThanOrEqual(plan.warmupMs);
          expect(f.actions.length).toBeGreaterThan(0);
          expect(f.atMs + f.durationMs).toBeLessThanOrEqual(plan.loadMs);
        }
        const last = plan.faults[plan.faults.length - 1]!;
        if (s !== 'rolling-restart') {
          expect(last.atMs + last.durationMs + MIN_RECOVERY_MS).toBeLessThanOrEqual(plan.loadMs);
        }
      }
    }
  });

  it('faults never overlap and warm up for 4-11 s', () => {
    for (const s of SCENARIOS) {
      const plan = planScenario(s, { seed: 9, durationMs: 300_000, partitions: 6 });
      expect(plan.warmupMs).toBeGreaterThanOrEqual(4000);
      expect(plan.warmupMs).toBeLessThanOrEqual(11_000);
      for (let i = 1; i < plan.faults.length; i++) {
        const prev = plan.faults[i - 1]!;
        expect(plan.faults[i]!.atMs).toBeGreaterThan(prev.atMs + prev.durationMs);
      }
    }
  });

  it('repeats repeatable faults in a long run, and hits the controller sometimes', () => {
    const plan = planScenario('broker-kill', { seed: 3, durationMs: 600_000, partitions: 6 });
    expect(plan.faults.length).toBeGreaterThan(10);
    const targets = plan.faults
      .map((f) => f.actions[0]!)
      .map((a) => (a.type === 'kill-broker' ? a.target.kind : ''));
    expect(targets[0]).toBe('leader');
    expect(targets).toContain('controller');
    expect(
      planScenario('all-brokers-down', { seed: 3, durationMs: 600_000, partitions: 6 }).faults,
    ).toHaveLength(1);
  });

  it('shapes: pause-short stays under the 3 s broker session timeout; all-brokers-down kills all three', () => {
    const short = planScenario('broker-pause-short', { seed: 5, durationMs: 30_000, partitions: 6 });
    expect(short.faults.every((f) => f.durationMs < 3000)).toBe(true);
    const all = planScenario('all-brokers-down', { seed: 5, durationMs: 30_000, partitions: 6 });
    expect(all.faults[0]!.kind).toBe('all-brokers-down');
    expect(all.faults[0]!.actions).toHaveLength(3);
    const two = planScenario('two-brokers-down', { seed: 5, durationMs: 30_000, partitions: 6 });
    expect(two.faults[0]!.actions.map((a) => a.type)).toEqual(['kill-broker', 'kill-broker']);
    const rolling = planScenario('rolling-restart', { seed: 5, durationMs: 20_000, partitions: 6 });
    const ids = rolling.faults.map((f) =>
      f.actions[0]!.type === 'stop-broker' ? f.actions[0]!.target : null,
    );
    expect(ids.map((t) => (t?.kind === 'broker' ? t.id : 0)).sort()).toEqual([1, 2, 3]);
    const node = planScenario('node-kill-mid-batch', {
      seed: 5,
      durationMs: 30_000,
      partitions: 6,
      nodes: 3,
    });
    for (const f of node.faults) {
      const a = f.actions[0]!;
      expect(a.type === 'kill-node' && a.node >= 0 && a.node < 3).toBe(true);
    }
  });

  it('extends the load when the duration is too short for the fault and recovery', () => {
    const plan = planScenario('broker-kill', { seed: 1, durationMs: 5000, partitions: 6 });
    expect(plan.loadMs).toBeGreaterThan(5000);
  });

  it('names and describes', () => {
    expect(isScenario('broker-kill')).toBe(true);
    expect(isScenario('nope')).toBe(false);
    expect(describeAction({ type: 'kill-broker', target: { kind: 'leader', partition: 2 } })).toBe(
      'SIGKILL leader of partition 2',
    );
    expect(
      describeAction({ type: 'proxy', target: { kind: 'broker', id: 1 }, fault: { kind: 'blackhole' } }),
    ).toBe('proxy blackhole on broker 1');
  });
});
