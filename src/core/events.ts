/** Fault and operator events: one format for the CLI, the chaos runner, the event API and the dashboard. */

/** A fault or operator event, marked on the dashboard's charts. */
export interface LagoonEvent {
  /** ms since epoch */
  at: number;
  /** e.g. broker_kill, broker_stop, broker_start, broker_pause, broker_resume, node_kill, note */
  kind: string;
  /** e.g. "broker-2", "node-3" */
  target?: string | undefined;
  message?: string | undefined;
  /** who reported it: "lagoon-cli", a chaos run id, any tool */
  source?: string | undefined;
}

/** Where a data dir's shared events file lives (JSON lines). */
export const EVENTS_FILE = 'events.jsonl';

const KIND_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Validates an event from the outside (POST /v1/events, the events file); returns a reason or the event. */
export function parseEvent(input: unknown, now: number): LagoonEvent | string {
  if (typeof input !== 'object' || input === null) return 'the body must be a JSON object';
  const e = input as Record<string, unknown>;
  if (typeof e.kind !== 'string' || !KIND_RE.test(e.kind))
    return 'kind: 1-64 of a-z 0-9 _ . - starting with a letter';
  for (const f of ['target', 'message', 'source'] as const) {
    if (e[f] !== undefined && (typeof e[f] !== 'string' || (e[f] as string).length > 500))
      return `${f}: a string of at most 500 characters`;
  }
  if (e.at !== undefined && (typeof e.at !== 'number' || !Number.isFinite(e.at)))
    return 'at: milliseconds since the epoch';
  return {
    at: typeof e.at === 'number' ? e.at : now,
    kind: e.kind,
    target: e.target as string | undefined,
    message: e.message as string | undefined,
    source: e.source as string | undefined,
  };
}
