import { describe, expect, it } from 'vitest';
import { clusterLayout } from '../../src/cluster/layout.js';
import { brokerProperties } from '../../src/cluster/properties.js';

function props(brokers: number, cores: number): Map<string, string> {
  const layout = clusterLayout('/tmp/lagoon-props', brokers, 19092);
  const text = brokerProperties(layout, layout.brokers[0]!, cores);
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );
}

describe('brokerProperties', () => {
  it('replicates by cluster size: RF 3 / min ISR 2 on three brokers, 1 / 1 alone', () => {
    expect(props(3, 2).get('default.replication.factor')).toBe('3');
    expect(props(3, 2).get('min.insync.replicas')).toBe('2');
    expect(props(1, 2).get('default.replication.factor')).toBe('1');
    expect(props(1, 2).get('min.insync.replicas')).toBe('1');
  });

  it("sizes request threads to a broker's share of the cores, never above Kafka's defaults, never 0", () => {
    const threads = (b: number, c: number) => {
      const p = props(b, c);
      return [p.get('num.network.threads'), p.get('num.io.threads')];
    };
    expect(threads(3, 2)).toEqual(['1', '1']);
    expect(threads(1, 2)).toEqual(['2', '2']);
    expect(threads(3, 12)).toEqual(['3', '4']);
    expect(threads(1, 64)).toEqual(['3', '8']);
  });
});
