import { LagoonError } from '../errors.js';

/**
 * Waits for a replica's applied offsets to reach a target, for session, strong and bounded reads and
 * for conditional writes. The in-process replica calls `notify` after each commit; when the replica
 * runs in another process (split roles), polling the store catches up within `pollMs`.
 */
export class OffsetWatch {
  private readonly read: () => Map<number, number>;
  private readonly pollMs: number;
  private readonly maxWaiters: number;
  private current = new Map<number, number>();
  private waiters = new Set<{ check: () => boolean; done: (ok: boolean) => void }>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * `maxWaiters` bounds the requests waiting at once (each is also bounded in time): past it a wait is refused at
   * once with 503 `too_many_waiting`, retryable, instead of growing memory while the replica is behind.
   */
  constructor(read: () => Map<number, number>, pollMs = 25, maxWaiters = 10_000) {
    this.read = read;
    this.pollMs = pollMs;
    this.maxWaiters = maxWaiters;
    this.current = read();
  }

  /** Next offset to apply, per partition, as last seen. */
  applied(partition: number): number {
    return this.current.get(partition) ?? 0;
  }

  notify(partition: number, appliedOffset: number): void {
    if (appliedOffset > (this.current.get(partition) ?? 0)) this.current.set(partition, appliedOffset);
    this.wake();
  }

  /**
   * Resolves true once every partition in `targets` reached its offset, false after `timeoutMs`. When too many
   * wait already: a read is refused (`too_many_waiting`, nothing happened); a write that is already in the log
   * (`alreadyDone`) is answered as if its wait had timed out (its outcome is then looked up, never denied).
   */
  waitFor(targets: Map<number, number>, timeoutMs: number, alreadyDone = false): Promise<boolean> {
    const check = () => [...targets].every(([p, o]) => this.applied(p) >= o);
    if (check()) return Promise.resolve(true);
    this.refresh();
    if (check()) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    if (this.waiters.size >= this.maxWaiters) {
      if (alreadyDone) return Promise.resolve(false);
      return Promise.reject(
        new LagoonError(
          'too_many_waiting',
          `${this.waiters.size} requests already wait for this replica to catch up; try again shortly or read at consistency=eventual`,
          { status: 503, retryable: true },
        ),
      );
    }
    return new Promise((resolve) => {
      const w = {
        check,
        done: (ok: boolean) => {
          clearTimeout(t);
          this.waiters.delete(w);
          if (this.waiters.size === 0) this.stopPolling();
          resolve(ok);
        },
      };
      const t = setTimeout(() => w.done(check()), timeoutMs);
      this.waiters.add(w);
      this.startPolling();
    });
  }

  close(): void {
    for (const w of [...this.waiters]) w.done(false);
    this.stopPolling();
  }

  private refresh(): void {
    try {
      for (const [p, o] of this.read()) if (o > (this.current.get(p) ?? 0)) this.current.set(p, o);
    } catch {
      // store closed: waiters time out
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) if (w.check()) w.done(true);
  }

  private startPolling(): void {
    this.timer ??= setInterval(() => {
      this.refresh();
      this.wake();
    }, this.pollMs);
  }

  private stopPolling(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
