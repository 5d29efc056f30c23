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
  private skipPartialLine = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: { file?: string | undefined; max?: number } = {}) {
    this.file = opts.file;
    this.max = opts.max ?? 200;
  }

  start(pollMs = 500): void {
    if (!this.file) return;
    // Only the file's tail matters (the ring keeps `max` events): never read a long history whole.
    try {
      this.readOffset = Math.max(0, fs.statSync(this.file).size - TAIL_BYTES);
      this.skipPartialLine = this.readOffset > 0;
    } catch {
      // no file yet
    }
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
      if (size < this.readOffset) this.readOffset = 0; // truncated or rotated
      if (size === this.readOffset) return;
      fd = fs.openSync(this.file, 'r');
      const buf = Buffer.alloc(size - this.readOffset);
      fs.readSync(fd, buf, 0, buf.length, this.readOffset);
      const text = buf.toString('utf8');
      const lastNl = text.lastIndexOf('\n');
      if (lastNl < 0) return;
      this.readOffset += Buffer.byteLength(text.slice(0, lastNl + 1));
      const lines = text.slice(0, lastNl).split('\n');
      if (this.skipPartialLine) {
        lines.shift(); // started mid-file: the first line is a fragment
        this.skipPartialLine = false;
      }
      for (const line of lines) {
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

/** How much of the events file's end a node reads at start. */
const TAIL_BYTES = 256 * 1024;
/** The events file is rotated (one old generation kept, `.1`) when it grows past this. */
export const MAX_EVENTS_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Appends one event as a JSON line (O_APPEND: concurrent writers do not interleave within a line).
 * Bounded: past MAX_EVENTS_FILE_BYTES the file is renamed to `<file>.1` and a new one begins; readers
 * see the size drop and start over from the new file's beginning.
 */
export function appendEvent(file: string, event: LagoonEvent): void {
  try {
    if (fs.statSync(file).size > MAX_EVENTS_FILE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    // no file yet, or another writer rotated it first
  }
  fs.appendFileSync(file, `${JSON.stringify(event)}\n`);
}
