import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LagoonError } from '../../../src/errors.js';
import type { GateRefusal, WriteAck } from '../../../src/log/writer.js';
import { OutboxDrainer } from '../../../src/outbox/drainer.js';
import { newOutboxId, Outbox } from '../../../src/outbox/outbox.js';
import { tempDir } from '../store/fixtures.js';

/**
 * The drain order, against a log that misbehaves the ways Kafka can: refusals (nothing appended), and unknown
 * outcomes (a 504) where the record may or may not have been appended. Whatever happens, each key's entries
 * first appear in the log in the order they were buffered, and every entry appears at least once (copies are
 * the replicas' business: same bytes, same write id and idempotency key). The real log: test/integration.
 */

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

/** A fake partitioned log with a seeded random fault per append. */
function flakyLog(seed: number) {
  let s = seed;
  const rnd = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  const log = new Map<number, Array<{ key: string; value: string }>>();
  let open = false;
  return {
    log,
    open: (v: boolean) => {
      open = v;
    },
    gate: (): GateRefusal | undefined =>
      open ? undefined : { code: 'kafka_unavailable', reason: 'no Kafka broker reachable' },
    async append(key: Buffer | null, value: Buffer, partition: number): Promise<WriteAck> {
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 3)));
      const r = rnd();
      if (r < 0.15) throw new LagoonError('kafka_unavailable', 'refused', { status: 503, definite: true });
      const part = log.get(partition) ?? [];
      log.set(partition, part);
      part.push({ key: key!.toString(), value: value.toString() });
      if (r < 0.3)
        throw new LagoonError('write_outcome_unknown', 'lost ack', { status: 504, definite: false });
      return { partition, offset: part.length - 1, timestamp: Date.now() };
    },
  };
}

describe('OutboxDrainer', () => {
  it('drains everything once Kafka is back, each key in buffer order, through refusals and unknown outcomes', async () => {
    for (const seed of [1, 42]) {
      const ob = Outbox.open(join(tmp.dir, `d-${seed}.db`), { max: 10_000 });
      const kafka = flakyLog(seed);
      const drainer = new OutboxDrainer(ob, kafka, {
        gate: kafka.gate,
        attemptTimeoutMs: 1000,
        keepSentMs: 3600_000,
        window: 16,
        retryMs: 5,
      });
      try {
        drainer.start();
        const buffered: Array<{ key: string; value: string; partition: number }> = [];
        for (let i = 0; i < 300; i++) {
          const key = `k${(i * 7) % 23}`;
          const partition = Number(key.slice(1)) % 3;
          const value = JSON.stringify({ v: 1, op: 'put', value: i, idem: `i${i}`, wid: `w${i}` });
          ob.add({
            id: newOutboxId(),
            key,
            partition,
            op: 'put',
            record: Buffer.from(value),
            idem: `i${i}`,
            fp: 'f',
          });
          buffered.push({ key, value, partition });
        }
        // Kafka down: nothing leaves.
        await new Promise((r) => setTimeout(r, 300));
        expect(kafka.log.size).toBe(0);
        kafka.open(true);
        drainer.kick();
        const deadline = Date.now() + 60_000;
        while (ob.stats().records > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(ob.stats().records).toBe(0);

        for (const p of [0, 1, 2]) {
          const firstSeen = new Map<string, number>();
          for (const [i, r] of (kafka.log.get(p) ?? []).entries())
            if (!firstSeen.has(r.value)) firstSeen.set(r.value, i);
          const mine = buffered.filter((b) => b.partition === p);
          // Every entry reached the log.
          expect(mine.every((b) => firstSeen.has(b.value))).toBe(true);
          // Per key: first appearances in buffer order.
          for (const key of new Set(mine.map((b) => b.key))) {
            const order = mine.filter((b) => b.key === key).map((b) => firstSeen.get(b.value)!);
            expect(order, key).toEqual([...order].sort((a, b) => a - b));
          }
        }
        expect(drainer.drained).toBe(300);
      } finally {
        await drainer.close();
        ob.close();
      }
    }
  });
});
