import { describe, expect, it } from 'vitest';
import { originOf, PeerSet } from '../../../src/lag/peer-set.js';

describe('PeerSet', () => {
  const self = () => 'http://127.0.0.1:8081';

  it('lists the configured peers, then nodes that introduced themselves, each once', () => {
    const s = new PeerSet(['http://127.0.0.1:8082/'], self);
    expect(s.learn('http://127.0.0.1:8084')).toBe(true);
    expect(s.learn('http://127.0.0.1:8084/')).toBe(false);
    expect(s.learn('http://127.0.0.1:8082')).toBe(false);
    expect(s.learn('http://127.0.0.1:8081')).toBe(false);
    expect(s.list()).toEqual(['http://127.0.0.1:8082', 'http://127.0.0.1:8084']);
  });

  it('learns only http(s) origins: no paths, queries, credentials or other schemes', () => {
    const s = new PeerSet([], self);
    for (const bad of [
      '',
      'not a url',
      'file:///etc/passwd',
      'http://x:1/v1',
      'http://u:p@x:1',
      'http://x:1/?a=1',
      'ftp://x',
    ]) {
      expect(s.learn(bad), bad).toBe(false);
    }
    expect(s.list()).toEqual([]);
    expect(originOf('https://node-4.example:8443')).toBe('https://node-4.example:8443');
  });

  it('is bounded', () => {
    const s = new PeerSet([], self, { max: 2 });
    expect(s.learn('http://a:1')).toBe(true);
    expect(s.learn('http://b:1')).toBe(true);
    expect(s.learn('http://c:1')).toBe(false);
    expect(s.list()).toHaveLength(2);
  });

  it('forgets a learned node that has not answered for forgetAfterMs, never a configured one', () => {
    const s = new PeerSet(['http://a:1'], self, { forgetAfterMs: 1000 });
    s.learn('http://b:1');
    expect(s.observe('http://b:1', false, 0)).toBe(false);
    expect(s.observe('http://b:1', true, 500)).toBe(false);
    expect(s.observe('http://b:1', false, 600)).toBe(false);
    expect(s.observe('http://b:1', false, 1500)).toBe(false);
    expect(s.observe('http://b:1', false, 1600)).toBe(true);
    expect(s.list()).toEqual(['http://a:1']);
    expect(s.observe('http://a:1', false, 0)).toBe(false);
    expect(s.observe('http://a:1', false, 1_000_000)).toBe(false);
    expect(s.list()).toEqual(['http://a:1']);
  });
});
