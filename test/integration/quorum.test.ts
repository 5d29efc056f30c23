import { describe, expect, it } from 'vitest';
import { activeController, describeQuorum } from '../../src/log/quorum.js';
import { localCluster } from '../support/kafka.js';

const cluster = localCluster();

describe.skipIf(!cluster)('probe', () => {
  it('probes', async () => {
    for (const b of cluster!.layout.brokers) {
      for (const port of [b.port, b.controllerPort]) {
        const t0 = performance.now();
        try {
          const q = await describeQuorum({ host: '127.0.0.1', port });
          console.log(b.id, port, 'OK', JSON.stringify(q, (_, v) => (typeof v === 'bigint' ? String(v) : v)));
        } catch (e) {
          console.log(b.id, port, 'ERR', (e as Error).message);
        }
        console.log('ms', performance.now() - t0);
      }
    }
    console.log(
      'active',
      await activeController(cluster!.layout.brokers.map((b) => ({ host: '127.0.0.1', port: b.controllerPort }))),
    );
    console.log('tool', await cluster!.activeController());
    expect(1).toBe(1);
  });
});
