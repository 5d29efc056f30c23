import { describe, expect, it } from 'vitest';
import type { ChaosResult } from '../../src/chaos/runner.js';
import type { ScenarioName } from '../../src/chaos/scenarios.js';
import type { Break } from '../../src/testing/breaks.js';
import { figures, run } from './support.js';

/**
 * Each checker must catch the bug it exists for. Every case runs a real scenario on a real cluster with
 * the nodes deliberately broken (LAGOON_TEST_BREAK, src/testing/breaks.ts) and asserts that the checker
 * named for that bug judges the history invalid. The same scenarios pass with the honest code
 * (single-broker, all-brokers-down and node-kill tests), so the failure is the break's doing.
 */
interface Case {
  brk: Break;
  scenario: ScenarioName;
  /** The checker that must flag it. */
  checker: string;
  /** Extra node environment that makes the break show (a slow replica, a short write deadline). */
  env?: Record<string, string>;
  /** What the checker's findings must say, when the checker can fail for more than one reason. */
  detail?: RegExp;
  why: string;
}

const CASES: Case[] = [
  {
    brk: 'apply-offsets-first',
    scenario: 'node-kill-mid-batch',
    // Between the two commits the store claims an offset whose rows it does not hold, so a session read
    // admitted by that offset returns an older value (and a node killed in between skips the rows for good;
    // convergence cannot see that gap here, because the load overwrites every key again afterwards).
    checker: 'session-reads',
    detail: /token required/,
    why: 'the store claims offsets before it holds their rows, and a node killed in between skips them',
  },
  {
    brk: 'session-ignores-token',
    scenario: 'broker-pause-short',
    checker: 'session-reads',
    env: { LAGOON_TEST_APPLY_DELAY_MS: '400' },
    why: 'a slow replica serves a session read older than the writes its token has seen',
  },
  {
    brk: 'ack-before-kafka',
    scenario: 'all-brokers-down',
    checker: 'no-lost-writes',
    why: 'writes answered 200 while every broker is down never reach the log',
  },
  {
    brk: 'strong-skips-offset-wait',
    scenario: 'broker-pause-short',
    checker: 'linearizable',
    env: { LAGOON_TEST_APPLY_DELAY_MS: '400' },
    why: 'a strong read on a slow replica misses a write acknowledged before the read began',
  },
  {
    brk: 'unknown-as-definite',
    scenario: 'broker-pause-short',
    checker: 'no-failed-values',
    // Shorter than the 1.5 s pause: writes sent to the paused leader time out, then land when it resumes.
    env: { LAGOON_WRITE_TIMEOUT_MS: '700' },
    why: 'writes that timed out after being sent are reported as failed, then land when the leader resumes',
  },
];

describe('the chaos checkers catch deliberately broken variants', () => {
  for (const c of CASES) {
    it(`${c.checker} flags '${c.brk}' (${c.scenario}): ${c.why}`, async () => {
      const r: ChaosResult = await run(c.scenario, {
        durationS: 20,
        // A broken store may never settle (digests that differ stay different): judge it after a bound.
        settleTimeoutMs: 60_000,
        // No heartbeat records: once the load stops the log stands still, so replicas can be compared at
        // equal offsets.
        nodeEnv: () => ({ LAGOON_TEST_BREAK: c.brk, LAGOON_HEARTBEAT_MS: '0', ...(c.env ?? {}) }),
      });
      console.log(`[${c.brk}] ${figures(r)}`);
      const check = r.report.checkers.find((x) => x.name === c.checker);
      expect(check, `no ${c.checker} result in the report`).toBeDefined();
      expect(check!.valid, `${c.checker} should have flagged '${c.brk}'`).toBe(false);
      expect(check!.errors.length).toBeGreaterThan(0);
      if (c.detail) expect(check!.errors.join('\n')).toMatch(c.detail);
      expect(r.report.valid).toBe(false);
    });
  }
});
