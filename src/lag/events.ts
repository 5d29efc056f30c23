import fs from 'node:fs';
import { type LagoonEvent, parseEvent } from '../core/events.js';

/**
 * Fault and operator events for the dashboard: a bounded ring in memory, optionally shared through
 * an append-only JSON-lines file in the data dir. `lagoon kafka kill|stop|pause|…` append to that file
 * (brokers may be down, so Kafka cannot carry these), and every node started by `lagoon up` tails it.
 */
export class EventLog {
  private readonly max: number;
  private readonly file: string | undefined;
  private events: LagoonEvent[] = [];
  private readOffset = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: { file?: string | undefined; max?: number } = {}) {
    this.file = opts.file;
    this.max = opts.max ?? 200;
  }

  start(pollMs = 500): void {
    if (!this.file) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), pollMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Records an event; with a shared file the other nodes see it on their next poll. */
  add(event: LagoonEvent): void {
    if (this.file) {
      appendEvent(this.file, event);
      this.poll();
    } else {
      this.push(event);
    }
  }

  list(): LagoonEvent[] {
    return [...this.events];
  }

  private push(e: LagoonEvent): void {
    this.events.push(e);
    this.events.sort((a, b) => a.at - b.at);
    if (this.events.length > this.max) this.events.splice(0, this.events.length - this.max);
  }

  private poll(): void {
    if (!this.file) return;
    let fd: number | undefined;
    try {
      const size = fs.statSync(this.file).size;
      if (size < this.readOffset) this.readOffset = 0; // truncated
      if (size === this.readOffset) return;
      fd = fs.openSync(this.file, 'r');
      const buf = Buffer.alloc(size - this.readOffset);
      fs.readSync(fd, buf, 0, buf.length, this.readOffset);
      const text = buf.toString('utf8');
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) return;
      this.readOffset += Buffer.byteLength(text.slice(0, lastNl + 1));
      for (const line of text.slice(0, lastNl).split('\n')) {
        if (!line.trim()) continue;
        try {
          const e = parseEvent(JSON.parse(line), Date.now());
          if (typeof e !== 'string') this.push(e);
        } catch {
          // a torn or foreign line: skip
        }
      }
    } catch {
      // no file yet
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
}

/** Appends one event as a JSON line (O_APPEND: concurrent writers do not interleave within a line). */
export function appendEvent(file: string, event: LagoonEvent): void {
  fs.appendFileSync(file, `${JSON.stringify(event)}\n`);
}
