import type { FastifyInstance } from 'fastify';
import { parseEvent } from '../core/events.js';
import { LagoonError } from '../errors.js';
import type { EventLog } from './events.js';
import type { LagHistory } from './history.js';
import type { LagTracker } from './tracker.js';

/**
 * The lag surface of a node: GET /v1/lag (the dashboard's feed) and the event API that any tool
 * (a chaos runner, a deploy script) uses to mark faults on the charts:
 * POST /v1/events {kind, target?, message?, source?, at?} → 201; GET /v1/events → recent events.
 * With a history: GET /v1/lag/history?since=<ms> → the last 15 minutes at 1 s as columns, with the
 * events and fault windows of that period (shape: `LagHistoryResponse` in history.ts).
 */
export function lagRoutes(
  app: FastifyInstance,
  tracker: LagTracker,
  events: EventLog,
  history?: LagHistory,
): void {
  app.get('/v1/lag', async () => tracker.report());
  if (history) {
    app.get<{ Querystring: { since?: string } }>('/v1/lag/history', async (req) => {
      const raw = req.query.since;
      const since = raw === undefined || raw === '' ? undefined : Number(raw);
      if (since !== undefined && !Number.isFinite(since))
        throw new LagoonError('invalid_query', 'since: milliseconds since the epoch', { status: 400 });
      return history.query(since);
    });
  }
  app.get('/v1/events', async () => ({ events: events.list() }));
  app.post('/v1/events', async (req, reply) => {
    const e = parseEvent(req.body, Date.now());
    if (typeof e === 'string') throw new LagoonError('invalid_event', `Invalid event: ${e}`, { status: 400 });
    events.add(e);
    return reply.code(201).send(e);
  });
}
