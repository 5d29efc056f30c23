import { encodeRecord } from '../core/record.js';
import type { ClusterMonitor } from '../log/monitor.js';
import type { Writer } from '../log/writer.js';

/**
 * Heartbeat records: a partition that nobody writes to still gets a record now and then, so its end offset and
 * produce times keep moving and tools that interpolate time lag from them (Burrow, kafka-lag-exporter) show no
 * false lag on an idle, caught-up replica. Replicas apply them as no-ops.
 *
 * At most about one per partition per `everyMs` in total, not one stream per node (SPEC §5): a node writes one
 * only after the partition's end offset, as its monitor sees it, has stood still for `everyMs` plus a random part
 * of `everyMs` drawn afresh each time. The first node to fire moves the end offset, which the others see at their
 * next refresh (500 ms) and start over; only nodes whose draws fall within one refresh of each other add a second.
 */
export class Heartbeats {
  private readonly lastEnd = new Map<number, { end: number; since: number; wait: number }>();
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
          this.lastEnd.set(p, { end, since: now, wait: every + Math.random() * every });
          continue;
        }
        if (now - last.since >= last.wait) {
          last.since = now;
          last.wait = every + Math.random() * every;
          this.writer.append(null, body, p, every * 2).catch(() => {});
        }
      }
    }, every / 4);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
