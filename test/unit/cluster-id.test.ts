import { describe, expect, it } from 'vitest';
import { newClusterId } from '../../src/cluster/local-cluster.js';

describe('newClusterId', () => {
  it('is a 22-character base64url id that never starts with "-" (the storage tool would read it as a flag)', () => {
    // 1 in 64 random ids starts with '-': 5000 draws make missing the guard near impossible.
    for (let i = 0; i < 5000; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
