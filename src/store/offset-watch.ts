/**
 * Waits for a replica's applied offsets to reach a target, for session, strong and bounded reads and
 * for conditional writes. The in-process replica calls `notify` after each commit; when the replica
 * runs in another process (split roles), polling the store catches up within `pollMs`.
 */
export class OffsetWatch {
  private readonly read: () => Map<number, number>;
  private readonly pollMs: number;
  private current = new Map<number, number>();
  private waiters = new Set<{ check: () => boolean; done: (ok: boolean) => void }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(read: () => Map<number, number>, pollMs = 25) {
    this.read = read;
    this.pollMs = pollMs;
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

  /** Resolves true once every partition in `targets` reached its offset, false after `timeoutMs`. */
  waitFor(targets: Map<number, number>, timeoutMs: number): Promise<boolean> {
    const check = () => [...targets].every(([p, o]) => this.applied(p) >= o);
    if (check()) return Promise.resolve(true);
    this.refresh();
    if (check()) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
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
