import { describe, expect, it } from 'vitest';
import { nodeEnv, parseNodeConfig } from '../../src/config.js';

const base = { id: 'n1', port: 8081, db: '/tmp/x.db', kafka: { brokers: '127.0.0.1:9092' } };

describe('node configuration', () => {
  it('has no test break and no apply delay unless asked', () => {
    const c = parseNodeConfig(base);
    expect(c.testBreaks).toEqual([]);
    expect(c.testApplyDelayMs).toBe(0);
  });

  it('reads test breaks from LAGOON_TEST_BREAK (comma-separated)', () => {
    const env = nodeEnv({
      LAGOON_TEST_BREAK: 'ack-before-kafka, unknown-as-definite',
      LAGOON_TEST_APPLY_DELAY_MS: '250',
    });
    const c = parseNodeConfig({
      ...base,
      ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    });
    expect(c.testBreaks).toEqual(['ack-before-kafka', 'unknown-as-definite']);
    expect(c.testApplyDelayMs).toBe(250);
  });

  it('refuses an unknown break name instead of ignoring it', () => {
    expect(() => parseNodeConfig({ ...base, testBreaks: 'ack-before-kafka,typo' })).toThrow(/testBreaks/);
  });
});
