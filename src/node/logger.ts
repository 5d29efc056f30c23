import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config.js';

export type { Logger } from 'pino';

/**
 * One node's log: JSON lines on stderr (a spawned node writes stderr to its node.log), each with an ISO
 * timestamp, the level's name, the node id, a `component` and an `event` name for every state change.
 * Synchronous writes: these are state changes, a few per minute, and the last lines before a crash or a
 * SIGKILL must not be lost in a buffer. Per-request lines only at `debug` and below.
 */
export function nodeLogger(nodeId: string, level: LogLevel = 'info'): Logger {
  return pino(
    {
      level,
      base: { node: nodeId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Nothing secret is ever logged on purpose; this is the net under that rule.
      redact: {
        paths: ['req.headers.authorization', 'headers.authorization', '*.password', 'password', 'token'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** The shape the node's parts log through: one structured line per state change, under an event name. */
export type EventLogFn = (event: string, fields?: Record<string, unknown>) => void;

/** A component's event logger: `info` by default; `warn`/`error` for events that say something went wrong. */
export function eventLogger(log: Logger, component: string): EventLogFn {
  const child = log.child({ component });
  return (event, fields = {}) => {
    const level = WARN_EVENTS.has(event) ? 'warn' : ERROR_EVENTS.has(event) ? 'error' : 'info';
    child[level]({ event, ...fields }, event.replaceAll('_', ' '));
  };
}

const WARN_EVENTS = new Set([
  'broker_lost',
  'kafka_unreachable',
  'write_gate_closed',
  'consumer_crashed',
  'consumer_restarting',
  'topic_unsafe',
  'record_misrouted',
  'shutdown_forced',
]);
const ERROR_EVENTS = new Set(['replica_failed']);
