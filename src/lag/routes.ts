import type { FastifyInstance } from 'fastify';
import { parseEvent } from '../core/events.js';
import { LagoonError } from '../errors.js';
import type { EventLog } from './events.js';
import type { LagTracker } from './tracker.js';

/**
 * The lag surface of a node: GET /v1/lag (the dashboard's feed) and the event API that any tool
 * (a chaos runner, a deploy script) uses to mark faults on the charts:
 * POST /v1/events {kind, target?, message?, source?, at?} → 201; GET /v1/events → recent events.
 */
export function lagRoutes(app: FastifyInstance, tracker: LagTracker, events: EventLog): void {
  app.get('/v1/lag', async () => tracker.report());
  app.get('/v1/events', async () => ({ events: events.list() }));
  app.post('/v1/events', async (req, reply) => {
    const e = parseEvent(req.body, Date.now());
    if (typeof e === 'string') throw new LagoonError('invalid_event', `Invalid event: ${e}`, { status: 400 });
    events.add(e);
    return reply.code(201).send(e);
  });
}
