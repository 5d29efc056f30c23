import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { LagoonError } from '../errors.js';
import { SNAPSHOT_CONTENT_TYPE, type SnapshotFile, snapshotStream } from '../store/snapshot.js';
import type { ApiDeps } from './deps.js';
import { parseWith } from './parse.js';
import { NoQuery, SnapshotQuery } from './schemas.js';

/** A snapshot as listed: its file name (not the node's paths), size and manifest. */
function listed(s: SnapshotFile) {
  return { name: path.basename(s.file), size: s.size, manifest: s.manifest };
}

/**
 * Snapshots of this replica (src/store/snapshot.ts): GET /v1/snapshot streams the newest (taking one if there
 * is none, or none as young as `maxAgeMs`); GET /v1/snapshots lists them; POST /v1/snapshots takes one now.
 */
export function snapshotRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const keeper = () => {
    if (!deps.snapshots) {
      throw new LagoonError('no_replica', 'This node has no replica (role api): ask a replica node', {
        status: 404,
      });
    }
    return deps.snapshots;
  };

  app.get('/v1/snapshot', async (req, reply) => {
    const q = parseWith(SnapshotQuery, req.query);
    const s = await keeper().latest(q.maxAgeMs);
    return reply
      .type(SNAPSHOT_CONTENT_TYPE)
      .header('Content-Length', String(s.size))
      .header('Content-Disposition', `attachment; filename="${path.basename(s.file)}"`)
      .header('Lagoon-Snapshot-Created', s.manifest.createdAt)
      .send(snapshotStream(s));
  });

  app.get('/v1/snapshots', async (req) => {
    parseWith(NoQuery, req.query);
    return { node: deps.config.id, snapshots: keeper().list().map(listed) };
  });

  app.post('/v1/snapshots', async (req, reply) => {
    parseWith(NoQuery, req.query);
    const s = await keeper().create('requested');
    return reply.code(201).send(listed(s));
  });
}
