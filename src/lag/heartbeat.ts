import { encodeRecord } from '../core/record.js';
import type { ClusterMonitor } from '../log/monitor.js';
import type { Writer } from '../log/writer.js';

/**
 * Heartbeat records: a partition that nobody writes to still gets a record about once a second, so
 * its end offset and produce times keep moving and an idle, caught-up replica shows no false time lag
 * (the technique Burrow and kafka-lag-exporter users rely on). Only idle partitions get one; replicas
 * apply them as no-ops.
 */
export class Heartbeats {
  private readonly lastEnd = new Map<number, { end: number; since: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly writer: Writer,
    private readonly monitor: ClusterMonitor,
    private readonly opts: { node: string; partitions: number; everyMs?: number },
  ) {}

  start(): void {
    const every = this.opts.everyMs ?? 1000;
    const body = encodeRecord({ v: 1, op: 'hb', node: this.opts.node });
    this.timer = setInterval(() => {
      const view = this.monitor.snapshot();
      if (!view.reachable) return;
      const now = Date.now();
      for (let p = 0; p < this.opts.partitions; p++) {
        const end = view.partitions[p]?.endOffset;
        if (end === undefined) continue;
        const last = this.lastEnd.get(p);
        if (!last || last.end !== end) {
          this.lastEnd.set(p, { end, since: now });
          continue;
        }
        if (now - last.since >= every) {
          last.since = now;
          this.writer.append(null, body, p, every * 2).catch(() => {});
        }
      }
    }, every / 2);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
