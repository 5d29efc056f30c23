import type { LagoonError } from './errors.js';
import type { TransportFailureKind } from './transport.js';

/**
 * When the client tries a request again, and where. The rules follow from what each kind of request risks:
 *
 * - `read`: repeating it changes nothing, so any failure a retry can cure is retried, on another node.
 * - `write` (PUT/DELETE): every client write carries an Idempotency-Key and every retry reuses it, so a write
 *   whose outcome is unknown (504 write_outcome_unknown, a lost connection, a timeout) is sent again — the
 *   store applies it once and answers the first attempt's outcome.
 * - `batch`: batches have no idempotency key. A batch is sent again only when nothing of it can have happened
 *   (the connection was never made, or a definite retryable refusal); an unknown outcome is resolved by asking
 *   for the batch's verdict, never by resending (see LagoonClient.batch).
 *
 * A definite failure is retried only when the node marked it `retryable`, and only after its Retry-After.
 * Refusals that belong to one node (it is starting, shutting down, takes no writes, or refused its log) send the
 * request to another node at once; that node has not said anything yet, so there is nothing to wait for.
 */
export type RequestKind = 'read' | 'write' | 'batch';

export type Failure =
  | { type: 'transport'; kind: Exclude<TransportFailureKind, 'aborted'> }
  | { type: 'problem'; error: LagoonError; retryAfterMs: number | undefined };

export interface Decision {
  retry: boolean;
  /** The failure is the node's own: mark it down and go elsewhere. */
  nodeFault: boolean;
  /** Wait at least this long before the next attempt (Retry-After), unless another node takes it. */
  minDelayMs: number;
}

/** Problem codes that say "not this node": another node may well take the request now. */
export const NODE_LOCAL_CODES: ReadonlySet<string> = new Set([
  'not_ready',
  'not_a_writer',
  'shutting_down',
  'replica_diverged',
]);

const NO: Decision = { retry: false, nodeFault: false, minDelayMs: 0 };

export function decide(kind: RequestKind, failure: Failure): Decision {
  if (failure.type === 'transport') {
    if (failure.kind === 'not_sent') return { retry: true, nodeFault: true, minDelayMs: 0 };
    // Lost or timed out: the node may have acted. Safe to repeat a read, or a write under its idempotency key.
    return kind === 'batch' ? { ...NO, nodeFault: true } : { retry: true, nodeFault: true, minDelayMs: 0 };
  }
  const { error, retryAfterMs } = failure;
  const wait = retryAfterMs ?? 0;
  if (NODE_LOCAL_CODES.has(error.code)) return { retry: true, nodeFault: true, minDelayMs: wait };
  if (!error.definite) {
    // A batch's unknown outcome is the caller's to resolve (by its id); anything else is safe to repeat.
    return kind === 'batch' ? NO : { retry: true, nodeFault: false, minDelayMs: wait };
  }
  if (error.retryable) return { retry: true, nodeFault: false, minDelayMs: wait };
  return NO;
}

/** Exponential backoff with jitter: half of the step fixed, half random, so clients that failed together spread. */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Retry-After in ms: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 && !signal?.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
