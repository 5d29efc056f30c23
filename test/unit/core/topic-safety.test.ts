import { describe, expect, it } from 'vitest';
import { partitionOf } from '../../../src/core/partitioner.js';
import { checkTopic, identityProblem, misroutedKey } from '../../../src/core/topic-safety.js';

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

describe('checkTopic: partition count and timestamp type', () => {
  it('says how to fix a partition count that disagrees with the topic', () => {
    const [why] = checkTopic({ ...safe, partitions: 6 }, { ...expected, partitions: 4 });
    expect(why).toMatch(/topic has 6 partitions but this node is configured with 4/);
    expect(why).toMatch(/--partitions 6/);
  });

  it('accepts LogAppendTime (new topics) and CreateTime (older ones), refuses anything else', () => {
    const ts = (v: string) =>
      checkTopic({ ...safe, configs: { ...safe.configs, 'message.timestamp.type': v } }, expected);
    expect(ts('LogAppendTime')).toEqual([]);
    expect(ts('CreateTime')).toEqual([]);
    expect(ts('SomethingElse')).toEqual([expect.stringMatching(/message.timestamp.type/)]);
  });
});

describe('identityProblem', () => {
  const id = { clusterId: 'c1', topic: 'lagoon.kv', topicId: 'AAAAAAAAAAAAAAAAAAAAAA' };

  it('accepts the same topic, and an id unknown on either side', () => {
    expect(identityProblem(id, { ...id })).toBeUndefined();
    expect(identityProblem({ ...id, topicId: null }, id)).toBeUndefined();
    expect(identityProblem(id, { ...id, topicId: null })).toBeUndefined();
  });

  it('refuses a recreated topic, another cluster or another name, and says the way out', () => {
    const recreated = identityProblem(id, { ...id, topicId: 'BBBBBBBBBBBBBBBBBBBBBB' });
    expect(recreated).toMatch(/deleted and recreated/);
    expect(recreated).toMatch(/new --db/);
    expect(recreated).toMatch(/snapshot/);
    expect(identityProblem(id, { ...id, clusterId: 'c2' })).toMatch(/another cluster/);
    // Another cluster is caught even when neither side knows the topic id (SASL clusters).
    expect(identityProblem({ ...id, topicId: null }, { ...id, clusterId: 'c2', topicId: null })).toMatch(
      /another cluster/,
    );
    expect(identityProblem(id, { ...id, topic: 'other' })).toMatch(/name changed/);
  });
});

describe('misroutedKey', () => {
  it('accepts a key in its own partition and heartbeats anywhere', () => {
    const key = 'some-key';
    const home = partitionOf(key, 6);
    expect(misroutedKey(Buffer.from(key), home, 6)).toBeUndefined();
    expect(misroutedKey(null, 3, 6)).toBeUndefined();
  });

  it('names the partition a key belongs to when it is found elsewhere', () => {
    // Keys routed with 4 partitions but read with 6: some land elsewhere, and each one is caught.
    let caught = 0;
    for (let i = 0; i < 200; i++) {
      const key = `k${i}`;
      const written = partitionOf(key, 4);
      const why = misroutedKey(Buffer.from(key), written, 6);
      if (written === partitionOf(key, 6)) expect(why).toBeUndefined();
      else {
        caught++;
        expect(why).toBe(
          `key "${key}" belongs to partition ${partitionOf(key, 6)} of 6, found in partition ${written}`,
        );
      }
    }
    expect(caught).toBeGreaterThan(50);
  });
});
