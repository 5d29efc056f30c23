import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReplicaStore } from '../../../src/store/replica-store.js';
import { tempDir } from './fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let path: string;

beforeEach(() => {
  tmp = tempDir();
  path = join(tmp.dir, 'replica.db');
});
afterEach(() => tmp.cleanup());

describe('ReplicaStore topic identity', () => {
  it('is unbound when new, and keeps its binding across a reopen', () => {
    const a = ReplicaStore.open(path, { partitions: 3 });
    expect(a.topicIdentity()).toBeUndefined();
    a.bindTopicIdentity({ clusterId: 'c1', topic: 't', topicId: null });
    expect(a.topicIdentity()).toEqual({ clusterId: 'c1', topic: 't', topicId: null });
    // A topic id learned later fills the binding in.
    a.bindTopicIdentity({ clusterId: 'c1', topic: 't', topicId: 'abc' });
    a.close();
    const b = ReplicaStore.open(path, { partitions: 3 });
    expect(b.topicIdentity()).toEqual({ clusterId: 'c1', topic: 't', topicId: 'abc' });
    b.close();
  });
});
