import { describe, expect, it } from 'vitest';
import { durationFlag } from '../../src/cli/args.js';
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

describe('retention safety', () => {
  it('defaults: 7 days of retention, a snapshot every hour', () => {
    const c = parseNodeConfig(base);
    expect(c.retentionMs).toBe(7 * 24 * 3600 * 1000);
    expect(c.snapshotIntervalMs).toBe(3600 * 1000);
  });

  it('refuses to start when no snapshot could be kept younger than the retention', () => {
    expect(() => parseNodeConfig({ ...base, retentionMs: 3_600_000 })).toThrow(/at most half the retention/);
    expect(() => parseNodeConfig({ ...base, retentionMs: 60_000, snapshotIntervalMs: 30_001 })).toThrow(
      /snapshots every 30001 ms/,
    );
    expect(parseNodeConfig({ ...base, retentionMs: 60_000, snapshotIntervalMs: 30_000 }).retentionMs).toBe(
      60_000,
    );
  });

  it('reads LAGOON_RETENTION_MS and LAGOON_SNAPSHOT_*', () => {
    const env = nodeEnv({
      LAGOON_RETENTION_MS: '10000',
      LAGOON_SNAPSHOT_INTERVAL_MS: '2000',
      LAGOON_SNAPSHOT_KEEP: '5',
      LAGOON_SNAPSHOT_DIR: '/tmp/snaps',
    });
    const c = parseNodeConfig({
      ...base,
      ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    });
    expect(c).toMatchObject({
      retentionMs: 10_000,
      snapshotIntervalMs: 2000,
      snapshotKeep: 5,
      snapshotDir: '/tmp/snaps',
    });
  });
});

describe('duration flags', () => {
  it('take units or plain milliseconds, and refuse anything else', () => {
    expect(durationFlag('retention', '7d')).toBe(7 * 86_400_000);
    expect(durationFlag('retention', '12h')).toBe(12 * 3_600_000);
    expect(durationFlag('retention', '30m')).toBe(1_800_000);
    expect(durationFlag('retention', '45s')).toBe(45_000);
    expect(durationFlag('retention', '500ms')).toBe(500);
    expect(durationFlag('retention', '1500')).toBe(1500);
    expect(durationFlag('retention', undefined)).toBeUndefined();
    for (const bad of ['', '0', '-1d', '1.5h', '7 days', 'd', '1w']) {
      expect(() => durationFlag('retention', bad), bad).toThrow(/--retention must be a duration/);
    }
  });
});
