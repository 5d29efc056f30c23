import { describe, expect, it } from 'vitest';
import { type ClusterFacts, clusterChanges } from '../../../src/core/cluster-changes.js';

const up: ClusterFacts = { reachable: true, brokers: [1, 2, 3], gates: [undefined, undefined] };
const events = (prev: ClusterFacts | undefined, next: ClusterFacts) =>
  clusterChanges(prev, next).map((c) => `${c.event}${JSON.stringify(c.fields)}`);

describe('clusterChanges', () => {
  it('reports the first contact, then nothing while nothing changes', () => {
    expect(events(undefined, up)).toEqual(['kafka_reachable{"brokers":[1,2,3]}']);
    expect(events(up, up)).toEqual([]);
    expect(events(undefined, { reachable: false, brokers: [], gates: [] })).toEqual([]);
  });

  it('reports brokers lost and back, and the write gates that closed and opened', () => {
    const lost: ClusterFacts = {
      reachable: true,
      brokers: [1, 2],
      gates: ['ISR 1 < min.insync.replicas 2', undefined],
    };
    expect(events(up, lost)).toEqual([
      'broker_lost{"broker":3}',
      'write_gate_closed{"partition":0,"reason":"ISR 1 < min.insync.replicas 2"}',
    ]);
    expect(events(lost, up)).toEqual(['broker_back{"broker":3}', 'write_gate_open{"partition":0}']);
  });

  it('an unreachable round says nothing about single brokers', () => {
    const down: ClusterFacts = { reachable: false, brokers: [], gates: up.gates };
    expect(events(up, down)).toEqual(['kafka_unreachable{}']);
    expect(events(down, { ...up, brokers: [1, 3] })).toEqual(['kafka_reachable{"brokers":[1,3]}']);
  });
});
