import { describe, expect, it } from 'vitest';
import { checkTopic } from '../../../src/core/topic-safety.js';

const expected = { partitions: 6, replicationFactor: 3, minInsyncReplicas: 2 };
const safe = {
  partitions: 6,
  replicationFactor: 3,
  configs: {
    'min.insync.replicas': '2',
    'unclean.leader.election.enable': 'false',
    'cleanup.policy': 'delete',
  },
};

describe('checkTopic', () => {
  it('accepts a safe topic, and a stronger one', () => {
    expect(checkTopic(safe, expected)).toEqual([]);
    expect(
      checkTopic(
        { ...safe, replicationFactor: 5, configs: { ...safe.configs, 'min.insync.replicas': '3' } },
        expected,
      ),
    ).toEqual([]);
  });

  it('flags each problem with a sentence', () => {
    const one = (over: Partial<typeof safe>, configs: Record<string, string> = {}) =>
      checkTopic({ ...safe, ...over, configs: { ...safe.configs, ...configs } }, expected);
    expect(one({ partitions: 3 })).toEqual([expect.stringMatching(/3 partitions.*6/)]);
    expect(one({ partitions: 12 })).toHaveLength(1);
    expect(one({ replicationFactor: 2 })).toEqual([expect.stringMatching(/replication factor is 2/)]);
    expect(one({}, { 'min.insync.replicas': '1' })).toEqual([
      expect.stringMatching(/min.insync.replicas is 1/),
    ]);
    expect(one({}, { 'min.insync.replicas': '4' })).toEqual([expect.stringMatching(/exceeds/)]);
    expect(one({}, { 'min.insync.replicas': 'two' })).toEqual([expect.stringMatching(/not an integer/)]);
    expect(one({}, { 'unclean.leader.election.enable': 'true' })).toEqual([expect.stringMatching(/unclean/)]);
    expect(one({}, { 'unclean.leader.election.enable': ' TRUE ' })).toHaveLength(1);
    expect(one({}, { 'cleanup.policy': 'compact' })).toEqual([expect.stringMatching(/compact/)]);
    expect(one({}, { 'cleanup.policy': 'delete, compact' })).toHaveLength(1);
    expect(one({}, { 'cleanup.policy': 'compact,delete' })).toHaveLength(1);
  });

  it('judges missing configs by Kafka defaults', () => {
    const problems = checkTopic({ partitions: 6, replicationFactor: 3, configs: {} }, expected);
    expect(problems).toEqual([expect.stringMatching(/min.insync.replicas is 1 \(Kafka default\)/)]);
    expect(
      checkTopic({ partitions: 1, replicationFactor: 1, configs: {} }, { ...expected, minInsyncReplicas: 1 }),
    ).toHaveLength(2);
  });

  it('lists every problem at once', () => {
    const all = checkTopic(
      {
        partitions: 1,
        replicationFactor: 1,
        configs: {
          'min.insync.replicas': '1',
          'unclean.leader.election.enable': 'true',
          'cleanup.policy': 'compact',
        },
      },
      expected,
    );
    expect(all).toHaveLength(5);
  });
});
